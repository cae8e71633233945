export interface WrapOptions {
  /** Columns (characters, not octets) a line may have; 0 or less leaves every line as it is. */
  readonly width: number;
  readonly html: boolean;
  /** Code units that do not start a character and so take no column (see TextCodec). */
  readonly isContinuation: (code: number) => boolean;
  /** text/plain; format=flowed (RFC 3676): soft line breaks, space-stuffing, quote depth. */
  readonly flowed?: { readonly delSp: boolean } | false;
}

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;

/**
 * Breaks lines longer than `width` at white space, greedily. The white space stays at the end
 * of the line and only a line break is inserted, so words are never split, reordered or joined,
 * and removing the inserted breaks gives the input back. A word longer than the width stays
 * whole on a line of its own; leading indentation is never a break point. In HTML nothing is
 * broken inside a tag (attribute values included), nor inside <pre>, <textarea>, <script> or
 * <style>, where a line break changes what the reader or the CSS parser sees.
 */
export function wrapText(text: string, options: WrapOptions): string {
  const { width } = options;
  if (width <= 0 || !hasLineLongerThan(text, width)) return text;
  const breakable = options.html ? htmlBreakableSpaces(text) : null;
  const flowed = options.flowed || null;
  const pieces: string[] = [];
  let copied = 0;
  let lineStart = 0;
  while (lineStart <= text.length) {
    const lf = text.indexOf('\n', lineStart);
    const next = lf === -1 ? text.length + 1 : lf + 1;
    let end = lf === -1 ? text.length : lf;
    if (end > lineStart && text.charCodeAt(end - 1) === CR) end--;
    if (end - lineStart > width) {
      const quoteDepth = flowed ? countQuoteMarks(text, lineStart, end) : 0;
      const prefix = quoteDepth > 0 ? `${'>'.repeat(quoteDepth)} ` : '';
      const firstWordSearchFrom = quoteDepth > 0 ? lineStart + quoteDepth : lineStart;
      for (const at of lineBreaks(
        text,
        firstWordSearchFrom,
        lineStart,
        end,
        options,
        breakable,
        prefix.length,
      )) {
        pieces.push(text.slice(copied, at));
        copied = at;
        if (!flowed) {
          pieces.push('\r\n');
          continue;
        }
        // RFC 3676 4.2: a soft break is the trailing space; with DelSp=yes that space is
        // removed on reading, so one more is added. 4.4: a line that would start with a space,
        // ">" or "From " is space-stuffed; a quoted line continues at the same quote depth.
        const stuff = prefix === '' && needsSpaceStuffing(text, at) ? ' ' : '';
        pieces.push(`${flowed.delSp ? ' ' : ''}\r\n${prefix}${stuff}`);
      }
    }
    lineStart = next;
  }
  if (copied === 0) return text;
  pieces.push(text.slice(copied));
  return pieces.join('');
}

/** Greedy break points (indices where a new line starts) of the line text[lineStart, end). */
function lineBreaks(
  text: string,
  scanFrom: number,
  lineStart: number,
  end: number,
  options: WrapOptions,
  breakable: Uint8Array | null,
  continuationColumns: number,
): number[] {
  const { width, isContinuation } = options;
  const breaks: number[] = [];
  let column = scanFrom - lineStart;
  let outputLineStart = lineStart;
  let seenWord = false;
  let opportunity = -1;
  let columnAtOpportunity = 0;
  for (let i = scanFrom; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code !== SPACE && code !== TAB) {
      if (seenWord && (breakable ? breakable[i - 1] === 1 : isSpace(text.charCodeAt(i - 1)))) {
        opportunity = i;
        columnAtOpportunity = column;
      }
      seenWord = true;
    }
    if (!isContinuation(code)) column++;
    // The white space after a word counts too: it stays on the line, so it must fit.
    if (column > width && opportunity > outputLineStart) {
      breaks.push(opportunity);
      column = column - columnAtOpportunity + continuationColumns;
      outputLineStart = opportunity;
      opportunity = -1;
    }
  }
  return breaks;
}

const isSpace = (code: number): boolean => code === SPACE || code === TAB;

function hasLineLongerThan(text: string, width: number): boolean {
  let start = 0;
  for (;;) {
    const lf = text.indexOf('\n', start);
    const end = lf === -1 ? text.length : lf;
    if (end - start > width) return true;
    if (lf === -1) return false;
    start = lf + 1;
  }
}

function countQuoteMarks(text: string, start: number, end: number): number {
  let i = start;
  while (i < end && text.charCodeAt(i) === 0x3e) i++;
  return i - start;
}

function needsSpaceStuffing(text: string, at: number): boolean {
  const code = text.charCodeAt(at);
  return code === SPACE || code === 0x3e || text.startsWith('From ', at);
}

/** Elements whose content keeps its line breaks (HTML "pre"-like and raw text elements). */
const PREFORMATTED = new Set(['pre', 'textarea', 'listing', 'xmp', 'plaintext']);
const RAW_TEXT = new Set(['script', 'style']);

/**
 * 1 at every space or tab of an HTML document that is a safe line-break point: in text, outside
 * every tag and outside preformatted and raw-text elements. State carries over lines: a tag or
 * a <pre> may span several.
 */
export function htmlBreakableSpaces(text: string): Uint8Array {
  const map = new Uint8Array(text.length);
  const n = text.length;
  let preformatted = 0;
  let i = 0;
  while (i < n) {
    const code = text.charCodeAt(i);
    if (code === 0x3c && i + 1 < n && isTagStart(text.charCodeAt(i + 1))) {
      const closing = text.charCodeAt(i + 1) === 0x2f;
      const name = tagName(text, closing ? i + 2 : i + 1);
      const end = tagEnd(text, i);
      i = end + 1;
      if (RAW_TEXT.has(name) && !closing && text.charCodeAt(end - 1) !== 0x2f) {
        const close = indexOfIgnoreCase(text, `</${name}`, i);
        i = close === -1 ? n : close;
      } else if (PREFORMATTED.has(name)) {
        preformatted = closing ? Math.max(0, preformatted - 1) : preformatted + 1;
      }
      continue;
    }
    if ((code === SPACE || code === TAB) && preformatted === 0) map[i] = 1;
    i++;
  }
  return map;
}

function isTagStart(code: number): boolean {
  return (
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x41 && code <= 0x5a) ||
    code === 0x2f ||
    code === 0x21 ||
    code === 0x3f
  );
}

function tagName(text: string, from: number): string {
  let i = from;
  while (i < text.length && /[A-Za-z0-9:-]/.test(text.charAt(i))) i++;
  return text.slice(from, i).toLowerCase();
}

/**
 * Index of the `>` that ends the tag opened at `start`. A quote opens an attribute value only
 * right after `=`, so an apostrophe in a comment or a bare attribute does not swallow the
 * document; an unterminated value runs to the end (no break is then made in it).
 */
export function tagEnd(text: string, start: number): number {
  let quote = 0;
  let afterEquals = false;
  for (let i = start + 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (quote !== 0) {
      if (code === quote) quote = 0;
      continue;
    }
    if (code === 0x3e) return i;
    if (code === 0x3d) {
      afterEquals = true;
    } else if ((code === 0x22 || code === 0x27) && afterEquals) {
      quote = code;
      afterEquals = false;
    } else if (code !== SPACE && code !== TAB && code !== LF && code !== CR) {
      afterEquals = false;
    }
  }
  return text.length - 1;
}

function indexOfIgnoreCase(text: string, needle: string, from: number): number {
  const lower = needle.toLowerCase();
  let at = from;
  for (;;) {
    at = text.indexOf('<', at);
    if (at === -1) return -1;
    if (text.slice(at, at + lower.length).toLowerCase() === lower) return at;
    at++;
  }
}
