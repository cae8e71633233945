/** RFC 5322 2.1.1: a line is at most 998 octets, excluding CRLF. */
export const MAX_LINE_OCTETS = 998;
/** RFC 2045 6.7 and 6.8: encoded lines of at most 76 characters. */
const ENCODED_LINE = 76;

const LF = 0x0a;
const CR = 0x0d;
const EQUALS = 0x3d;
const CRLF = Buffer.from('\r\n');
const SOFT_BREAK = Buffer.from('=\r\n');
const EMPTY = Buffer.alloc(0);

/** How a part's body is encoded, as far as the rewrite is concerned. */
export type TransferEncoding = 'base64' | 'quoted-printable' | 'identity' | 'other';

/** 7bit, 8bit, binary and a missing header are all "as is" (identity); x-uuencode and the like are "other". */
export function transferEncodingOf(cte: string): TransferEncoding {
  switch (cte) {
    case 'base64':
    case 'quoted-printable':
      return cte;
    case '':
    case '7bit':
    case '8bit':
    case 'binary':
      return 'identity';
    default:
      return 'other';
  }
}

export function longestLineOctets(bytes: Buffer): number {
  let longest = 0;
  let start = 0;
  for (;;) {
    const lf = bytes.indexOf(LF, start);
    const end = lf === -1 ? bytes.length : lf;
    const length = end - start - (end > start && bytes[end - 1] === CR ? 1 : 0);
    if (length > longest) longest = length;
    if (lf === -1) return longest;
    start = lf + 1;
  }
}

export function decodeTransfer(body: Buffer, encoding: 'base64' | 'quoted-printable' | 'identity'): Buffer {
  switch (encoding) {
    case 'base64':
      return Buffer.from(body.toString('latin1'), 'base64');
    case 'quoted-printable':
      return decodeQuotedPrintable(body);
    case 'identity':
      return body;
  }
}

/**
 * `content` encoded with 76-character lines. `trailingBreak` adds a final CRLF: a part's body
 * as mailsplit hands it over has none (the CRLF before a boundary belongs to the boundary),
 * except at the end of a single-part message.
 */
export function encodeTransfer(
  content: Buffer,
  encoding: 'base64' | 'quoted-printable',
  trailingBreak: boolean,
): Buffer {
  const encoded = encoding === 'base64' ? encodeBase64Lines(content) : encodeQuotedPrintable(content);
  const needsBreak = trailingBreak && encoded[encoded.length - 1] !== LF;
  return needsBreak ? Buffer.concat([encoded, CRLF]) : encoded;
}

function encodeBase64Lines(content: Buffer): Buffer {
  const encoded = Buffer.from(content.toString('base64'), 'latin1');
  const lines = Math.ceil(encoded.length / ENCODED_LINE);
  if (lines <= 1) return encoded;
  const out = Buffer.allocUnsafe(encoded.length + (lines - 1) * 2);
  let at = 0;
  for (let from = 0; from < encoded.length; from += ENCODED_LINE) {
    if (from > 0) {
      out[at++] = CR;
      out[at++] = LF;
    }
    at += encoded.copy(out, at, from, Math.min(from + ENCODED_LINE, encoded.length));
  }
  return out;
}

const HEX = Buffer.from('0123456789ABCDEF', 'latin1');

/*
 * One work buffer for the (synchronous) codecs below, grown on demand and kept up to 1 MiB, so
 * that a part costs one exact-size allocation instead of a worst-case one.
 */
let work = Buffer.allocUnsafe(64 * 1024);
function scratch(size: number): Buffer {
  if (size <= work.length) return work;
  const buffer = Buffer.allocUnsafe(size);
  if (size <= 1024 * 1024) work = buffer;
  return buffer;
}
const SPACE = 0x20;
const TAB = 0x09;

/**
 * RFC 2045 6.7 quoted-printable: CRLF in the content is a hard line break; every other octet
 * outside 33-126 (and "=", and white space before a line end) is =XX; lines are soft-broken
 * ("=" CRLF) to stay within 76 characters, never inside an =XX.
 */
export function encodeQuotedPrintable(content: Buffer): Buffer {
  const out = scratch(content.length * 3 + Math.ceil((content.length * 3) / 73) * 3 + 3);
  let at = 0;
  let column = 0;
  const length = content.length;
  for (let i = 0; i < length; i++) {
    const byte = content[i] as number;
    if (byte === CR && content[i + 1] === LF) {
      out[at++] = CR;
      out[at++] = LF;
      i++;
      column = 0;
      continue;
    }
    if (byte >= 33 && byte <= 126 && byte !== EQUALS && column < ENCODED_LINE - 1) {
      out[at++] = byte;
      column++;
      continue;
    }
    const beforeLineEnd = i + 1 === length || (content[i + 1] === CR && content[i + 2] === LF);
    const literal =
      (byte >= 33 && byte <= 126 && byte !== EQUALS) || ((byte === SPACE || byte === TAB) && !beforeLineEnd);
    const width = literal ? 1 : 3;
    // Room for the "=" of a soft break, unless this is the last character of the line.
    if (column + width > (beforeLineEnd ? ENCODED_LINE : ENCODED_LINE - 1)) {
      out[at++] = EQUALS;
      out[at++] = CR;
      out[at++] = LF;
      column = 0;
    }
    if (literal) {
      out[at++] = byte;
    } else {
      out[at++] = EQUALS;
      out[at++] = HEX[byte >> 4] as number;
      out[at++] = HEX[byte & 0x0f] as number;
    }
    column += width;
  }
  return Buffer.from(out.subarray(0, at));
}

function hexValue(byte: number | undefined): number {
  if (byte === undefined) return -1;
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  return -1;
}

/**
 * RFC 2045 6.7 decoding: =XX is an octet, "=" at the end of a line (white space may follow it)
 * is a soft break, white space at the end of a line was added in transport and goes; anything
 * malformed stays as written.
 */
export function decodeQuotedPrintable(encoded: Buffer): Buffer {
  const out = scratch(encoded.length);
  let at = 0;
  const length = encoded.length;
  let lineStart = 0;
  while (lineStart < length) {
    let lineEnd = encoded.indexOf(LF, lineStart);
    const hasBreak = lineEnd !== -1;
    if (!hasBreak) lineEnd = length;
    let contentEnd = lineEnd > lineStart && encoded[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd;
    while (contentEnd > lineStart && (encoded[contentEnd - 1] === SPACE || encoded[contentEnd - 1] === TAB))
      contentEnd--;
    let soft = false;
    if (contentEnd > lineStart && encoded[contentEnd - 1] === EQUALS) {
      soft = true;
      contentEnd--;
    }
    for (let i = lineStart; i < contentEnd; i++) {
      const byte = encoded[i] as number;
      if (byte === EQUALS && i + 2 < contentEnd) {
        const high = hexValue(encoded[i + 1]);
        const low = hexValue(encoded[i + 2]);
        if (high !== -1 && low !== -1) {
          out[at++] = (high << 4) | low;
          i += 2;
          continue;
        }
      }
      out[at++] = byte;
    }
    if (hasBreak && !soft) {
      // The line ending as written (CRLF, or a bare LF from a sloppy sender).
      if (encoded[lineEnd - 1] === CR) out[at++] = CR;
      out[at++] = LF;
    }
    lineStart = lineEnd + 1;
  }
  return Buffer.from(out.subarray(0, at));
}

/**
 * Keeps a base64 or quoted-printable body streaming while making sure no line of it is longer
 * than 998 octets: lines within the limit pass byte for byte; a longer one (a broken encoder
 * writing base64 on one line) is folded at 76 (base64 ignores line breaks; quoted-printable gets
 * soft breaks that never split an =XX escape), which decodes to the same content. At most one
 * line (998 octets) is held back.
 */
export class LongLineFolder {
  private pending: Buffer = EMPTY;
  /** Inside a long line whose first pieces were already folded and sent. */
  private folding = false;
  /** True once some line had to be folded. */
  folded = false;

  constructor(private readonly encoding: 'base64' | 'quoted-printable') {}

  push(chunk: Buffer): Buffer[] {
    const data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = EMPTY;
    const lastLf = data.lastIndexOf(LF);
    if (
      !this.folding &&
      data.length - lastLf - 1 <= MAX_LINE_OCTETS &&
      longestLineOctets(data.subarray(0, lastLf + 1)) <= MAX_LINE_OCTETS
    ) {
      this.pending = data.subarray(lastLf + 1);
      return lastLf === -1 ? [] : [data.subarray(0, lastLf + 1)];
    }
    const out: Buffer[] = [];
    let start = 0;
    while (start < data.length) {
      const lf = data.indexOf(LF, start);
      if (lf === -1) {
        const tail = data.subarray(start);
        if (this.folding || tail.length > MAX_LINE_OCTETS) {
          this.folding = true;
          this.pending = this.fold(tail, false, out);
        } else {
          this.pending = tail;
        }
        break;
      }
      const contentEnd = lf > start && data[lf - 1] === CR ? lf - 1 : lf;
      const content = data.subarray(start, contentEnd);
      if (this.folding || content.length > MAX_LINE_OCTETS) out.push(this.fold(content, true, out));
      else out.push(content);
      out.push(data.subarray(contentEnd, lf + 1));
      this.folding = false;
      start = lf + 1;
    }
    return out;
  }

  end(): Buffer[] {
    const tail = this.pending;
    this.pending = EMPTY;
    if (tail.length === 0) return [];
    if (!this.folding && tail.length <= MAX_LINE_OCTETS) return [tail];
    const out: Buffer[] = [];
    out.push(this.fold(tail, true, out));
    return out;
  }

  /** Pushes folded pieces of `content` to `out`; returns what is left (the last piece when `final`). */
  private fold(content: Buffer, final: boolean, out: Buffer[]): Buffer {
    this.folded = true;
    // A CR at the end of a chunk may be half of the line's CRLF: never fold between the two.
    const limit = !final && content[content.length - 1] === CR ? content.length - 1 : content.length;
    let at = 0;
    while (limit - at > ENCODED_LINE) {
      if (this.encoding === 'base64') {
        out.push(content.subarray(at, at + ENCODED_LINE), CRLF);
        at += ENCODED_LINE;
        continue;
      }
      let cut = at + ENCODED_LINE - 1;
      if (content[cut - 1] === EQUALS) cut -= 1;
      else if (content[cut - 2] === EQUALS) cut -= 2;
      out.push(content.subarray(at, cut), SOFT_BREAK);
      at = cut;
    }
    return content.subarray(at);
  }
}
