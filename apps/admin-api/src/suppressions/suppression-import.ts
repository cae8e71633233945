import { parseAllowedFromEntry, suppressionKey, type SuppressionList } from '@relay/domain';
import { isSuppressionList, SUPPRESSION_LISTS } from '@relay/persistence';
import type { CsvRecord } from './suppression-csv.js';

/** RFC 5321 4.5.3.1.3: a path is at most 256 octets, so an address at most 254 (without <>). */
const MAX_ADDRESS_LENGTH = 254;
/** Longer reasons (a whole DSN pasted into a cell) are cut here. */
export const MAX_REASON_LENGTH = 1000;
/** The import reports this many invalid rows; it counts them all. */
export const MAX_INVALID_REPORTED = 100;

/**
 * An address that can be listed: a mailbox `local@domain` (the same syntax the accounts'
 * allowedFrom accepts for an address, RFC 5321 / RFC 6531), without display name or brackets.
 */
export function isListableAddress(address: string): boolean {
  return address.length <= MAX_ADDRESS_LENGTH && parseAllowedFromEntry(address)?.kind === 'address';
}

export interface SuppressionToAdd {
  readonly address: string;
  readonly list: SuppressionList;
  readonly reason: string;
}

export interface InvalidRow {
  readonly line: number;
  /** The address cell as given (cut to 300 characters). */
  readonly value: string;
  readonly error: string;
}

export interface ParsedImport {
  /** Valid rows, each listing once (the first row of a repeated address and list). */
  readonly entries: SuppressionToAdd[];
  /** Rows repeating an earlier row's address (by its key) and list. */
  readonly repeated: number;
  /** The first MAX_INVALID_REPORTED invalid rows. */
  readonly invalid: InvalidRow[];
  readonly invalidCount: number;
}

interface Columns {
  readonly address: number;
  /** -1: the file has none. */
  readonly list: number;
  readonly reason: number;
}

/** Header cells compared without case, spaces, dashes or underscores: "Email Address" = "email_address". */
const headerName = (cell: string): string =>
  cell
    .trim()
    .toLowerCase()
    .replace(/[\s_-]/g, '');

/** What other providers' exports call the address column (Mailgun: address; SendGrid, Postmark: email). */
const ADDRESS_HEADERS = new Set(['address', 'email', 'emailaddress', 'recipient']);

/**
 * The columns a first record names, when it is a header: one cell names the address column and
 * no cell is an address itself. Without a header the columns are address[,list][,reason].
 */
function headerColumns(fields: readonly string[]): Columns | undefined {
  if (fields.some((f) => isListableAddress(f.trim()))) return undefined;
  const names = fields.map(headerName);
  const address = names.findIndex((n) => ADDRESS_HEADERS.has(n));
  if (address < 0) return undefined;
  return { address, list: names.indexOf('list'), reason: names.indexOf('reason') };
}

const POSITIONAL: Columns = { address: 0, list: 1, reason: 2 };

/**
 * Reads an import file's records into the listings to add. A blank record is passed over. The
 * list is `list` when given (for every row: a list column is then ignored), else the row's own
 * list column. A row whose address or list is invalid is reported with its line, not imported.
 */
export async function parseSuppressionImport(
  records: AsyncIterable<CsvRecord>,
  options: { readonly list?: SuppressionList; readonly defaultReason: string },
): Promise<ParsedImport> {
  const entries: SuppressionToAdd[] = [];
  const invalid: InvalidRow[] = [];
  const seen = new Set<string>();
  let invalidCount = 0;
  let repeated = 0;
  let columns: Columns | undefined;
  const refuse = (line: number, value: string, error: string): void => {
    invalidCount++;
    if (invalid.length < MAX_INVALID_REPORTED) invalid.push({ line, value: value.slice(0, 300), error });
  };
  for await (const record of records) {
    if (record.fields.every((f) => f.trim() === '')) continue;
    if (columns === undefined) {
      columns = headerColumns(record.fields) ?? POSITIONAL;
      if (columns !== POSITIONAL) continue;
    }
    const cell = (index: number): string => (index < 0 ? '' : (record.fields[index] ?? '').trim());
    const address = cell(columns.address);
    if (!isListableAddress(address)) {
      refuse(record.line, address, address === '' ? 'no address' : 'not a valid email address');
      continue;
    }
    const listCell = cell(columns.list).toLowerCase();
    const list = options.list ?? (isSuppressionList(listCell) ? listCell : undefined);
    if (list === undefined) {
      refuse(
        record.line,
        address,
        listCell === ''
          ? 'no list: give ?list= or a list column'
          : `list must be one of: ${SUPPRESSION_LISTS.join(', ')}`,
      );
      continue;
    }
    const id = `${list} ${suppressionKey(address)}`;
    if (seen.has(id)) {
      repeated++;
      continue;
    }
    seen.add(id);
    const reason = cell(columns.reason).slice(0, MAX_REASON_LENGTH);
    entries.push({ address, list, reason: reason === '' ? options.defaultReason : reason });
  }
  return { entries, repeated, invalid, invalidCount };
}
