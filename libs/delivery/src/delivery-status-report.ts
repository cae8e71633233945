import { randomBytes } from 'node:crypto';
import libmime from 'libmime';

/** RFC 3464 2.3.6: the kind of diagnostic (`smtp` for an SMTP reply, `X-...` otherwise) and its text. */
export interface DiagnosticCode {
  readonly type: string;
  readonly text: string;
}

/** One recipient of the original message that the report says failed (RFC 3464 2.3). */
export interface ReportedRecipient {
  /** Final-Recipient (2.3.2). */
  readonly recipient: string;
  /** RFC 3463 enhanced status code (2.3.4), e.g. 5.1.1. */
  readonly status: string;
  /** Diagnostic-Code (2.3.6), when known. */
  readonly diagnosticCode?: DiagnosticCode;
  /** Remote-MTA host (2.3.5), when a remote server gave the answer. */
  readonly remoteMta?: string;
}

export interface DeliveryStatusReport {
  /** This relay's host name: Reporting-MTA (2.2.2) and the MAILER-DAEMON address. */
  readonly reportingMta: string;
  /** Where the report goes (its To header). */
  readonly to: string;
  readonly subject: string;
  readonly date: Date;
  /** The report's own Message-ID, without angle brackets. */
  readonly messageId: string;
  /** When the original message reached the relay (Arrival-Date, 2.2.5). */
  readonly arrivalDate?: Date;
  /** The human-readable explanation (RFC 6522 first part); lines end in `\n` or CRLF. */
  readonly text: string;
  readonly recipients: readonly ReportedRecipient[];
  /** The original message's header block, as stored; at most the headers, never the body. */
  readonly originalHeaders: Buffer | string;
  /** Content-Description of the headers part, e.g. to say the headers were rebuilt. */
  readonly originalHeadersDescription?: string;
  /** Fixed only by tests; a random one otherwise. */
  readonly boundary?: string;
}

export interface BuiltReport {
  /** The whole message, CRLF line ends. */
  readonly raw: Buffer;
  /** Some part is 8-bit (UTF-8 text or headers): send with BODY=8BITMIME. */
  readonly eightBit: boolean;
  /** An address in it is UTF-8 (RFC 6531): needs SMTPUTF8. */
  readonly smtpUtf8: boolean;
}

const NON_ASCII = /[^\p{ASCII}]/u;
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number): string => String(n).padStart(2, '0');
/** RFC 5322 3.2.5: a line SHOULD stay within 78 characters. */
const FOLD_AT = 78;

/** RFC 5322 3.3 date-time in UTC. */
function rfc5322Date(date: Date): string {
  return (
    `${DAYS[date.getUTCDay()]}, ${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`
  );
}

/** One line of header text: a value from a remote server or a client must not start a new header. */
function oneLine(value: string): string {
  return value.replace(/\p{Cc}+/gu, ' ').trim();
}

/** RFC 5322 2.2.3 folding at white space, so long diagnostics stay within the line limit. */
function fold(field: string): string {
  const words = field.split(' ');
  const lines: string[] = [];
  let line = words.shift() ?? '';
  for (const word of words) {
    if (line.length + 1 + word.length > FOLD_AT && line.trim() !== '') {
      lines.push(line);
      line = ` ${word}`;
    } else {
      line += ` ${word}`;
    }
  }
  lines.push(line);
  return lines.join('\r\n');
}

const crlf = (text: string): string => text.replace(/\r?\n/g, '\r\n');

/** RFC 3464 2.3.2 with RFC 6533 3: a UTF-8 address is typed `utf-8`, an ASCII one `rfc822`. */
const addressField = (address: string): string =>
  NON_ASCII.test(address) ? `utf-8; ${oneLine(address)}` : `rfc822; ${oneLine(address)}`;

function recipientGroup(recipient: ReportedRecipient): string {
  const fields = [
    `Final-Recipient: ${addressField(recipient.recipient)}`,
    'Action: failed',
    `Status: ${/^[245]\.\d{1,3}\.\d{1,3}$/.test(recipient.status) ? recipient.status : '5.0.0'}`,
  ];
  if (recipient.remoteMta) fields.push(`Remote-MTA: dns; ${oneLine(recipient.remoteMta)}`);
  if (recipient.diagnosticCode) {
    const { type, text } = recipient.diagnosticCode;
    fields.push(fold(`Diagnostic-Code: ${oneLine(type)}; ${oneLine(text)}`));
  }
  return fields.join('\r\n') + '\r\n';
}

/** The header block alone, CRLF lines, without the blank line that ends it. */
function headerBlock(headers: Buffer | string): Buffer {
  const text = crlf(typeof headers === 'string' ? headers : headers.toString('latin1'));
  const end = text.indexOf('\r\n\r\n');
  const block = (end === -1 ? text : text.slice(0, end)).replace(/(\r\n)+$/, '');
  return Buffer.from(block === '' ? '' : `${block}\r\n`, typeof headers === 'string' ? 'utf8' : 'latin1');
}

const encodeHeader = (value: string): string =>
  NON_ASCII.test(value) ? libmime.encodeWords(oneLine(value), 'Q', 52) : oneLine(value);

/**
 * A delivery status notification (RFC 3464) as a multipart/report (RFC 6522) with three parts: a
 * human-readable explanation, the machine-readable message/delivery-status, and the original
 * message's headers (text/rfc822-headers; never the body, so a report cannot carry the content
 * on). Sent as an automatic reply (RFC 3834 Auto-Submitted). UTF-8 in the text or the headers
 * makes the part 8-bit; UTF-8 addresses use the RFC 6533 global types.
 */
export function buildDeliveryStatusReport(report: DeliveryStatusReport): BuiltReport {
  const boundary = report.boundary ?? `=_report_${randomBytes(12).toString('hex')}`;
  const host = oneLine(report.reportingMta);
  const text = crlf(report.text).replace(/(\r\n)*$/, '\r\n');
  const textEightBit = NON_ASCII.test(text);
  const original = headerBlock(report.originalHeaders);
  const headersEightBit = original.some((byte) => byte > 0x7f);

  const statusFields = [`Reporting-MTA: dns; ${host}`];
  if (report.arrivalDate) statusFields.push(`Arrival-Date: ${rfc5322Date(report.arrivalDate)}`);
  const status = [statusFields.join('\r\n') + '\r\n', ...report.recipients.map(recipientGroup)].join('\r\n');
  // RFC 6533 3.4: a UTF-8 address or diagnostic makes it message/global-delivery-status.
  const globalStatus = NON_ASCII.test(status);

  const head = [
    `From: Mail Delivery System <MAILER-DAEMON@${host}>`,
    `To: <${oneLine(report.to)}>`,
    fold(`Subject: ${encodeHeader(report.subject)}`),
    `Date: ${rfc5322Date(report.date)}`,
    `Message-ID: <${oneLine(report.messageId)}>`,
    // RFC 3834 5: an automatic response; well-behaved responders never answer it.
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="${boundary}"`,
  ].join('\r\n');

  const parts: (string | Buffer)[] = [
    `${head}\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n`,
    `--${boundary}\r\n`,
    'Content-Description: Notification\r\n',
    `Content-Type: text/plain; charset=${textEightBit ? 'utf-8' : 'us-ascii'}\r\n`,
    `Content-Transfer-Encoding: ${textEightBit ? '8bit' : '7bit'}\r\n\r\n`,
    text,
    `\r\n--${boundary}\r\n`,
    'Content-Description: Delivery report\r\n',
    `Content-Type: message/${globalStatus ? 'global-delivery-status' : 'delivery-status'}\r\n`,
    ...(globalStatus ? ['Content-Transfer-Encoding: 8bit\r\n'] : []),
    '\r\n',
    status,
    `\r\n--${boundary}\r\n`,
    `Content-Description: ${oneLine(report.originalHeadersDescription ?? 'Undelivered Message Headers')}\r\n`,
    // RFC 6533 3.3: headers with UTF-8 in them are message/global-headers.
    `Content-Type: ${headersEightBit ? 'message/global-headers' : 'text/rfc822-headers'}\r\n`,
    ...(headersEightBit ? ['Content-Transfer-Encoding: 8bit\r\n'] : []),
    '\r\n',
    original,
    `\r\n--${boundary}--\r\n`,
  ];
  return {
    raw: Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p))),
    eightBit: textEightBit || headersEightBit || globalStatus,
    smtpUtf8: NON_ASCII.test(report.to),
  };
}
