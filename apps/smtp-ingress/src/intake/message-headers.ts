import libmime from 'libmime';
import addressparser from 'nodemailer/lib/addressparser';

/** What the relay needs from a submitted message's top-level header block. */
export interface MessageHeaders {
  /** Address of the (first) From mailbox, '' when there is none. */
  readonly from: string;
  readonly fromName?: string;
  readonly subject?: string;
  /** The Message-ID without angle brackets, '' when missing. */
  readonly messageId: string;
  readonly hasDate: boolean;
}

/** Splits a raw header block (CRLF lines, folded) into unfolded name/value pairs. */
export function parseHeaderBlock(block: string): { name: string; value: string }[] {
  const headers: { name: string; value: string }[] = [];
  for (const line of block.split('\r\n')) {
    if (line === '') continue;
    const last = headers[headers.length - 1];
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
      last.value += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    headers.push({ name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1).trim() });
  }
  return headers;
}

function decodeWords(value: string): string {
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}

export function readMessageHeaders(block: string): MessageHeaders {
  const headers = parseHeaderBlock(block);
  const first = (name: string): string | undefined => headers.find((h) => h.name === name)?.value;

  let from = '';
  let fromName: string | undefined;
  const fromValue = first('from');
  if (fromValue !== undefined) {
    const mailbox = addressparser(fromValue, { flatten: true }).find((entry) => entry.address);
    if (mailbox) {
      from = mailbox.address ?? '';
      if (mailbox.name) fromName = decodeWords(mailbox.name);
    }
  }
  const subject = first('subject');
  const messageId = /<([^>]+)>/.exec(first('message-id') ?? '')?.[1] ?? first('message-id')?.trim() ?? '';
  return {
    from,
    ...(fromName ? { fromName } : {}),
    ...(subject !== undefined ? { subject: decodeWords(subject) } : {}),
    messageId,
    hasDate: first('date') !== undefined,
  };
}
