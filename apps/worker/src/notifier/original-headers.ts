import libmime from 'libmime';
import type { Readable } from 'node:stream';

/** A report carries the original headers, never the body; a larger header block is cut. */
const MAX_HEADER_BYTES = 64 * 1024;
const END_OF_HEADERS = Buffer.from('\r\n\r\n');

/**
 * The header block of a stored message (up to the empty line that ends it), read from the
 * start of `body` without reading the rest. A block past MAX_HEADER_BYTES is cut after its last
 * whole line. The spool holds CRLF-normalised bodies (the ingress normalises them).
 */
export async function readHeaderBlock(body: Readable): Promise<Buffer> {
  let head = Buffer.alloc(0);
  try {
    for await (const chunk of body) {
      // The end marker may straddle two chunks: search from a few bytes back.
      const from = Math.max(0, head.length - 3);
      head = Buffer.concat([head, Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk))]);
      const end = head.indexOf(END_OF_HEADERS, from);
      if (end !== -1) return head.subarray(0, end + 2);
      if (head.length >= MAX_HEADER_BYTES) break;
    }
  } finally {
    body.destroy();
  }
  const cut = head.subarray(0, MAX_HEADER_BYTES);
  const lastLine = cut.lastIndexOf('\r\n');
  return lastLine === -1 ? cut : cut.subarray(0, lastLine + 2);
}

/** The first Subject of a header block, unfolded and decoded (RFC 2047); undefined when none. */
export function subjectOf(block: Buffer): string | undefined {
  const text = block.toString('utf8').replace(/\r\n[ \t]+/g, ' ');
  const match = /^subject:[ \t]*(.*)$/im.exec(text);
  if (!match) return undefined;
  const value = (match[1] ?? '').trim();
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}

const NON_ASCII = /[^\p{ASCII}]/u;
const oneLine = (value: string): string => value.replace(/\p{Cc}+/gu, ' ').trim();
/** RFC 5322 3.2.3 specials: a display name with one of these is quoted. */
const SPECIALS = /[()<>[\]:;@\\,."]/;

function displayName(name: string): string {
  const clean = oneLine(name);
  if (NON_ASCII.test(clean)) return libmime.encodeWords(clean, 'Q', 52);
  return SPECIALS.test(clean) ? `"${clean.replace(/["\\]/g, '\\$&')}"` : clean;
}

/**
 * Headers rebuilt from what an event recorded, for a message whose body the relay did not keep
 * (a RelayDenied): only From and Subject are known.
 */
export function rebuiltHeaderBlock(fields: {
  readonly from: string;
  readonly fromName?: string;
  readonly subject?: string;
}): Buffer {
  const from = `<${oneLine(fields.from)}>`;
  const lines = [`From: ${fields.fromName ? `${displayName(fields.fromName)} ${from}` : from}`];
  if (fields.subject !== undefined) {
    const subject = oneLine(fields.subject);
    lines.push(`Subject: ${NON_ASCII.test(subject) ? libmime.encodeWords(subject, 'Q', 52) : subject}`);
  }
  return Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'utf8');
}
