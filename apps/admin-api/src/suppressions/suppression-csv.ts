import type { SuppressionEntry } from '@relay/persistence';

/** The export's header row; the import recognises it (its `address` column) like any other. */
export const SUPPRESSIONS_CSV_HEADER = ['address', 'list', 'reason', 'source', 'created_at'] as const;

/** RFC 4180 2.6 and 2.7: a field with a comma, a quote or a line break is quoted, quotes doubled. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** RFC 4180 2.1: records end with CRLF. */
const csvRecord = (fields: readonly string[]): string => `${fields.map(csvField).join(',')}\r\n`;

/** Lines are handed on in chunks of about this many characters, not one write per row. */
const CHUNK = 64 * 1024;

/** The export as CSV text, header first, in chunks, as the rows arrive. */
export async function* suppressionsCsv(rows: AsyncIterable<SuppressionEntry>): AsyncGenerator<string> {
  let chunk = csvRecord(SUPPRESSIONS_CSV_HEADER);
  for await (const row of rows) {
    chunk += csvRecord([row.address, row.list, row.reason, row.source, row.createdAt]);
    if (chunk.length >= CHUNK) {
      yield chunk;
      chunk = '';
    }
  }
  yield chunk;
}

export interface CsvRecord {
  /** Line of the input (1-based) the record starts on; a quoted line break makes a record span more. */
  readonly line: number;
  readonly fields: readonly string[];
}

type State = 'field-start' | 'unquoted' | 'quoted' | 'quote-in-quoted';

/**
 * A streaming RFC 4180 reader: push text as it arrives and take the records it completes. It is
 * lenient where exports from other tools are sloppy: LF alone ends a record as CRLF does, a
 * quote inside an unquoted field is kept, text after a closing quote is appended, and a quoted
 * field left open at the end is taken as it is.
 */
export class CsvReader {
  private state: State = 'field-start';
  private fields: string[] = [];
  private field = '';
  private line = 1;
  private recordLine = 1;
  /** The last record ended at a CR: an LF right after it belongs to that line break. */
  private afterCr = false;

  push(text: string): CsvRecord[] {
    const records: CsvRecord[] = [];
    for (const ch of text) {
      if (this.afterCr) {
        this.afterCr = false;
        if (ch === '\n') continue;
      }
      switch (this.state) {
        case 'quoted':
          if (ch === '"') this.state = 'quote-in-quoted';
          else {
            this.field += ch;
            if (ch === '\n') this.line++;
          }
          break;
        case 'quote-in-quoted':
          if (ch === '"') {
            this.field += '"';
            this.state = 'quoted';
          } else this.delimit(ch, records, 'unquoted');
          break;
        case 'field-start':
          if (ch === '"') this.state = 'quoted';
          else this.delimit(ch, records, 'unquoted');
          break;
        case 'unquoted':
          this.delimit(ch, records, 'unquoted');
          break;
      }
    }
    return records;
  }

  /** The record the input ends in without a line break, if any. */
  end(): CsvRecord[] {
    if (this.state === 'field-start' && this.fields.length === 0) return [];
    const records: CsvRecord[] = [];
    this.endRecord(records);
    return records;
  }

  /** Outside quotes: a comma ends the field, CR or LF the record, anything else is text. */
  private delimit(ch: string, records: CsvRecord[], next: State): void {
    if (ch === ',') {
      this.fields.push(this.field);
      this.field = '';
      this.state = 'field-start';
    } else if (ch === '\r' || ch === '\n') {
      this.endRecord(records);
      this.afterCr = ch === '\r';
      this.line++;
      this.recordLine = this.line;
    } else {
      this.field += ch;
      this.state = next;
    }
  }

  private endRecord(records: CsvRecord[]): void {
    this.fields.push(this.field);
    records.push({ line: this.recordLine, fields: this.fields });
    this.fields = [];
    this.field = '';
    this.state = 'field-start';
  }
}

/**
 * The records of a CSV byte stream (UTF-8; a byte order mark, as spreadsheet programs write, is
 * dropped), read as the bytes arrive.
 */
export async function* readCsv(chunks: AsyncIterable<Uint8Array | string>): AsyncGenerator<CsvRecord> {
  const decoder = new TextDecoder('utf-8');
  const reader = new CsvReader();
  for await (const chunk of chunks) {
    const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    yield* reader.push(text);
  }
  yield* reader.push(decoder.decode());
  yield* reader.end();
}
