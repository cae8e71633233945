import { encodingJapanese, iconv } from './cjs-modules.js';

/**
 * How the text of a part is turned into a string the rewriters work on, and back into the
 * part's own charset.
 *
 * Charsets in which every byte below 0x80 is the ASCII character and never part of a multi-byte
 * character (UTF-8, US-ASCII, ISO-8859-*, windows-125x, KOI8) are handled byte-transparently:
 * the bytes become a latin1 string, the rewriters only look at and insert ASCII (tags, URLs,
 * white space), and the bytes go back unchanged. Nothing outside a change can be altered, not
 * even invalid sequences. Every other charset (Shift_JIS, ISO-2022-JP, GBK, Big5, UTF-16...)
 * is decoded, because there an ASCII byte can be half of a character, and encoded again.
 */
export interface TextCodec {
  readonly charset: string;
  /** True when `decode` maps bytes 1:1 to chars (latin1), so string length is octet count. */
  readonly byteTransparent: boolean;
  readonly decode: (bytes: Buffer) => string;
  /**
   * The part's bytes for `text`, or null when a character has no representation in the charset
   * and `html` is false. In HTML such a character becomes a numeric character reference.
   */
  readonly encode: (text: string, html: boolean) => Buffer | null;
  /** A substring of the working string (a URL) as Unicode, for tracking tokens. */
  readonly toUnicode: (text: string) => string;
  /** Code units that do not start a character (UTF-8 continuation bytes, low surrogates). */
  readonly isContinuation: (code: number) => boolean;
}

const TRANSPARENT =
  /^(?:us-?ascii|ascii|ansi_x3\.4-1968|iso[-_]?646(?:-us)?|utf-?8|iso[-_]?8859[-_]?\d{1,2}|latin-?\d{1,2}|l\d|(?:windows|cp|win)-?125\d|koi8-?[a-z]{1,2})$/;

const isUtf8Continuation = (code: number): boolean => code >= 0x80 && code <= 0xbf;
const isLowSurrogate = (code: number): boolean => code >= 0xdc00 && code <= 0xdfff;
const never = (): boolean => false;

/** The codec for a part's charset parameter (absent: US-ASCII), or null for a charset we cannot convert. */
export function textCodecFor(charsetParam: string | false): TextCodec | null {
  const charset = (charsetParam || 'us-ascii').trim().toLowerCase();
  if (TRANSPARENT.test(charset)) return transparentCodec(charset);
  if (/^(?:iso-?2022-?jp|jis|csiso2022jp)$/.test(charset)) return iso2022JpCodec(charset);
  if (iconv.encodingExists(charset)) return iconvCodec(charset);
  return null;
}

function transparentCodec(charset: string): TextCodec {
  const utf8 = /^utf-?8$/.test(charset);
  const ascii = !utf8 && /ascii|646|x3\.4/.test(charset);
  return {
    charset,
    byteTransparent: true,
    decode: (bytes) => bytes.toString('latin1'),
    encode: (text) => Buffer.from(text, 'latin1'),
    toUnicode: (text) => {
      if (!/[\u0080-\uffff]/.test(text)) return text;
      const bytes = Buffer.from(text, 'latin1');
      if (utf8) return bytes.toString('utf8');
      return ascii ? text : iconv.decode(bytes, charset);
    },
    isContinuation: utf8 ? isUtf8Continuation : never,
  };
}

function iconvCodec(charset: string): TextCodec {
  return decodingCodec(
    charset,
    (bytes) => iconv.decode(bytes, charset),
    (text) => iconv.encode(text, charset),
  );
}

/** iconv-lite has no ISO-2022-JP; libmime decodes it with encoding-japanese, and so do we both ways. */
function iso2022JpCodec(charset: string): TextCodec {
  return decodingCodec(
    charset,
    (bytes) => encodingJapanese.codeToString(encodingJapanese.convert(bytes, { to: 'UNICODE', from: 'JIS' })),
    (text) =>
      Buffer.from(
        encodingJapanese.convert(encodingJapanese.stringToCode(text), { to: 'JIS', from: 'UNICODE' }),
      ),
  );
}

function decodingCodec(
  charset: string,
  decode: (bytes: Buffer) => string,
  encodeRaw: (text: string) => Buffer,
): TextCodec {
  const representable = (text: string): boolean => decode(encodeRaw(text)) === text;
  return {
    charset,
    byteTransparent: false,
    decode,
    encode: (text, html) => {
      const bytes = encodeRaw(text);
      if (decode(bytes) === text) return bytes;
      if (!html) return null;
      // Characters the charset cannot hold (or U+FFFD from bytes that were invalid to begin
      // with) become numeric character references; everything else keeps the charset.
      let escaped = '';
      for (const char of text) {
        escaped += char.charCodeAt(0) < 0x80 || representable(char) ? char : `&#${char.codePointAt(0)};`;
      }
      return encodeRaw(escaped);
    },
    toUnicode: (text) => text,
    isContinuation: isLowSurrogate,
  };
}
