import libmime from 'libmime';

/**
 * Reads RFC 3464 delivery status notifications: a multipart/report (report-type=delivery-status)
 * whose message/delivery-status part holds one per-message field group, then one group per
 * recipient. Lenient where real MTAs are sloppy (case, folding, LF-only lines, `rfc822;` with or
 * without a space or angle brackets, a transfer-encoded status part), strict on what matters: a
 * report without a delivery-status part is not a DSN, and the returned original message (a
 * message/rfc822 or text/rfc822-headers part) is never searched, so a DSN quoted inside it
 * cannot speak for the report.
 */

export type DsnAction = 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded';

export interface DsnRecipient {
  /** Address part of Final-Recipient (RFC 3464 2.3.2), without its `rfc822;` type. */
  readonly finalRecipient?: string;
  /** Address part of Original-Recipient (2.3.1): the ORCPT the relay gave, when the MTA kept it. */
  readonly originalRecipient?: string;
  /** Lower-cased; `undefined` when the field is missing or not one RFC 3464 2.3.3 defines. */
  readonly action?: DsnAction;
  /** RFC 3463 code from Status (2.3.4), without any comment after it. */
  readonly status?: string;
  /** Diagnostic-Code text after its type (2.3.6), unfolded to one line. */
  readonly diagnosticCode?: string;
  /** The Diagnostic-Code type: `smtp`, or an MTA's own such as `X-Postfix`. */
  readonly diagnosticType?: string;
  /** Remote-MTA host (2.3.5), without its `dns;` type. */
  readonly remoteMta?: string;
}

export interface DeliveryStatusNotification {
  /** Original-Envelope-Id (2.2.1): the ENVID the relay sent with MAIL FROM, if any. */
  readonly originalEnvelopeId?: string;
  /** Reporting-MTA host (2.2.2), without its `dns;` type. */
  readonly reportingMta?: string;
  readonly recipients: readonly DsnRecipient[];
}

/** Parses a raw message; null when it is no delivery status notification (an auto-reply, spam). */
export function parseDeliveryStatusNotification(raw: Buffer | string): DeliveryStatusNotification | null {
  // latin1 keeps every byte as one char, so offsets and base64 stay exact; text is re-read as UTF-8.
  const message = (typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw).toString('latin1');
  const status = findDeliveryStatus(parseEntity(message), 0);
  return status === null ? null : parseDeliveryStatusBody(status);
}

/** The recipients a DSN reports as permanently failed; delayed, delivered, relayed and expanded ones do not count. */
export function failedRecipients(dsn: DeliveryStatusNotification): DsnRecipient[] {
  return dsn.recipients.filter((recipient) => recipient.action === 'failed');
}

interface Header {
  readonly name: string;
  readonly value: string;
}

interface Entity {
  readonly headers: readonly Header[];
  readonly body: string;
}

/** Nested multiparts deeper than this are not followed (a report is two levels at most). */
const MAX_DEPTH = 8;
const ACTIONS: ReadonlySet<string> = new Set<DsnAction>([
  'failed',
  'delayed',
  'delivered',
  'relayed',
  'expanded',
]);

function parseEntity(text: string): Entity {
  // A part that starts with a blank line has no headers (RFC 2046 5.1.1: text/plain, us-ascii).
  const bare = /^\r?\n/.exec(text);
  if (bare) return { headers: [], body: text.slice(bare[0].length) };
  const match = /\r?\n\r?\n/.exec(text);
  // A header block that runs to the end of the entity: no body (RFC 2046 allows an empty part).
  const head = match ? text.slice(0, match.index) : text;
  const body = match ? text.slice(match.index + match[0].length) : '';
  return { headers: parseFieldGroup(head), body };
}

/**
 * Header-style fields (RFC 5322 2.2), names lower-cased. A folded value keeps its line breaks
 * (`\n` before each trimmed continuation) until `header` or `unfoldDiagnostic` reads it.
 */
function parseFieldGroup(block: string): Header[] {
  const headers: Header[] = [];
  for (const line of block.split(/\r?\n/)) {
    const last = headers[headers.length - 1];
    if (/^[ \t]/.test(line)) {
      if (last && line.trim() !== '') {
        headers[headers.length - 1] = { name: last.name, value: `${last.value}\n${line.trim()}` };
      }
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    headers.push({ name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1).trim() });
  }
  return headers;
}

/** The field's value on one line. */
function header(headers: readonly Header[], name: string): string | undefined {
  return rawHeader(headers, name)?.replace(/\s*\n\s*/g, ' ');
}

function rawHeader(headers: readonly Header[], name: string): string | undefined {
  return headers.find((h) => h.name === name)?.value;
}

function contentType(entity: Entity): { type: string; params: Readonly<Record<string, string>> } {
  const parsed = libmime.parseHeaderValue(header(entity.headers, 'content-type') ?? 'text/plain');
  return { type: parsed.value.toLowerCase().trim(), params: parsed.params };
}

/** The decoded body of the delivery-status part, searched depth first through multiparts only. */
function findDeliveryStatus(entity: Entity, depth: number): string | null {
  const { type, params } = contentType(entity);
  // RFC 6533 3.6: message/global-delivery-status is the UTF-8 form of the same fields.
  if (type === 'message/delivery-status' || type === 'message/global-delivery-status') {
    return decodeBody(entity);
  }
  const boundary = params.boundary;
  if (!type.startsWith('multipart/') || !boundary || depth >= MAX_DEPTH) return null;
  for (const part of splitMultipart(entity.body, boundary)) {
    const found = findDeliveryStatus(parseEntity(part), depth + 1);
    if (found !== null) return found;
  }
  return null;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** RFC 2046 5.1.1: parts lie between `--boundary` lines; `--boundary--` ends them. */
function splitMultipart(body: string, boundary: string): string[] {
  const delimiter = new RegExp(`(?:^|\\r?\\n)--${escapeRegExp(boundary)}(--)?[ \\t]*(?=\\r?\\n|$)`, 'g');
  const parts: string[] = [];
  let start: number | undefined;
  for (let match = delimiter.exec(body); match !== null; match = delimiter.exec(body)) {
    if (start !== undefined) parts.push(body.slice(start, match.index));
    if (match[1] === '--') return parts;
    start = match.index + match[0].length;
    // Skip the line break after the delimiter line.
    const rest = /^\r?\n/.exec(body.slice(start));
    if (rest) start += rest[0].length;
  }
  // No closing delimiter (a truncated report): keep what the last part has.
  if (start !== undefined) parts.push(body.slice(start));
  return parts;
}

function decodeBody(entity: Entity): string {
  const encoding = (header(entity.headers, 'content-transfer-encoding') ?? '').toLowerCase().trim();
  let bytes: Buffer;
  if (encoding === 'base64') {
    bytes = Buffer.from(entity.body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
  } else if (encoding === 'quoted-printable') {
    bytes = decodeQuotedPrintable(entity.body);
  } else {
    bytes = Buffer.from(entity.body, 'latin1');
  }
  return bytes.toString('utf8');
}

/** RFC 2045 6.7: `=XX` is a byte, `=` at a line end is a soft break. */
function decodeQuotedPrintable(text: string): Buffer {
  const unfolded = text.replace(/[ \t]+(?=\r?\n)/g, '').replace(/=\r?\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < unfolded.length; i++) {
    const hex = unfolded.slice(i + 1, i + 3);
    if (unfolded[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(unfolded.charCodeAt(i) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

/**
 * Field groups are separated by blank lines (RFC 3464 2.1). The first normally holds the
 * per-message fields, but a group counts as per-recipient by its content (a Final-Recipient or an
 * Action), since some MTAs leave out the per-message group or put a blank line at the start.
 */
function parseDeliveryStatusBody(body: string): DeliveryStatusNotification {
  const groups = body
    .split(/\r?\n(?:[ \t]*\r?\n)+/)
    .map((block) => parseFieldGroup(block))
    .filter((fields) => fields.length > 0);
  const perMessage: Header[] = [];
  const recipients: DsnRecipient[] = [];
  for (const fields of groups) {
    if (header(fields, 'final-recipient') !== undefined || header(fields, 'action') !== undefined) {
      recipients.push(recipientOf(fields));
    } else {
      perMessage.push(...fields);
    }
  }
  const envelopeId = header(perMessage, 'original-envelope-id');
  const reportingMta = typed(stripComments(header(perMessage, 'reporting-mta') ?? ''));
  return {
    ...(envelopeId ? { originalEnvelopeId: decodeXtext(envelopeId) } : {}),
    ...(reportingMta?.value ? { reportingMta: reportingMta.value } : {}),
    recipients,
  };
}

function recipientOf(fields: readonly Header[]): DsnRecipient {
  const finalRecipient = address(header(fields, 'final-recipient'));
  const originalRecipient = address(header(fields, 'original-recipient'));
  const action = stripComments(header(fields, 'action') ?? '').toLowerCase();
  const status = /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(header(fields, 'status') ?? '')?.[1];
  const diagnostic = typed(rawHeader(fields, 'diagnostic-code'));
  const diagnosticCode = diagnostic ? unfoldDiagnostic(diagnostic.value) : '';
  const remoteMta = typed(stripComments(header(fields, 'remote-mta') ?? ''));
  return {
    ...(finalRecipient ? { finalRecipient } : {}),
    ...(originalRecipient ? { originalRecipient } : {}),
    ...(ACTIONS.has(action) ? { action: action as DsnAction } : {}),
    ...(status ? { status } : {}),
    ...(diagnosticCode ? { diagnosticCode } : {}),
    ...(diagnostic?.type ? { diagnosticType: diagnostic.type } : {}),
    ...(remoteMta?.value ? { remoteMta: remoteMta.value } : {}),
  };
}

/**
 * A multi-line SMTP reply folded into Diagnostic-Code repeats its `550-5.1.1 ` prefix on every
 * line; on one line the prefix stays once, as `550 5.1.1 ` (what a single-line reply looks like).
 */
function unfoldDiagnostic(value: string): string {
  const lines = value
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const first = /^(\d{3})[ -]/.exec(lines[0] ?? '');
  const repeated = first
    ? new RegExp(`^${first[1]}[ -](?:[245]\\.\\d{1,3}\\.\\d{1,3}(?:\\s+|$))?`)
    : undefined;
  return lines
    .map((line, i) =>
      i === 0 ? line.replace(/^(\d{3})-/, '$1 ') : repeated ? line.replace(repeated, '') : line,
    )
    .filter((line) => line !== '')
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** `type; value` (RFC 3464 2.1.2); a value without a type is kept whole. */
function typed(value: string | undefined): { type?: string; value: string } | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const match = /^([A-Za-z][A-Za-z0-9-]*)\s*;\s*([\s\S]*)$/.exec(value.trim());
  if (!match?.[1]) return { value: value.trim() };
  return { type: match[1], value: (match[2] ?? '').trim() };
}

/** The address of a recipient field: `rfc822; a@b`, `rfc822;<a@b>`, `utf-8; a@b` or a bare address. */
function address(value: string | undefined): string | undefined {
  const field = typed(value);
  if (!field) return undefined;
  let addr = stripComments(field.value).trim();
  const bracketed = /<([^>]*)>/.exec(addr);
  if (bracketed?.[1] !== undefined) addr = bracketed[1].trim();
  // RFC 6533 3.2: a utf-8 address type escapes characters as \x{HHHH}.
  if (field.type?.toLowerCase() === 'utf-8') {
    addr = addr.replace(/\\x\{([0-9A-Fa-f]{1,6})\}/g, (_m, hex: string) =>
      String.fromCodePoint(parseInt(hex, 16)),
    );
  }
  return addr === '' ? undefined : addr;
}

/** Drops `(comments)` (RFC 5322 3.2.2) that some MTAs append, e.g. `failed (bad mailbox)`. */
function stripComments(value: string): string {
  return value.replace(/\([^()]*\)/g, ' ').trim();
}

/** RFC 3461 4: ENVID is xtext, `+XX` being a byte. */
function decodeXtext(value: string): string {
  return value
    .trim()
    .replace(/\+([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}
