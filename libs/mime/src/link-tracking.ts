import { tagEnd } from './line-wrap.js';

/** What the tracking rewrite of one recipient's copy needs; built once per message. */
export interface TrackingRewrite {
  /** `https://<tracking domain>` or TRACKING_BASE_URL, without a trailing slash. */
  readonly baseUrl: string;
  readonly opens: boolean;
  readonly clicks: boolean;
  readonly trackUrlTextLinks: boolean;
  readonly unsubscribeUrl: string;
  readonly openPixelUrl: string;
  /** `<base>/c.z?<token>` for a target URL (Unicode). */
  clickUrl(target: string): string;
}

export interface TrackingCounts {
  clicks: number;
  urlTextLinksLeft: number;
  unsubscribeLinks: number;
  openPixels: number;
}

/**
 * A URL the sender wrote to stand for the recipient's unsubscribe link (DESIGN.md: a URL ending
 * in `/u.z?***uniqueid***`). The host and path are the sender's guess; the whole URL is replaced,
 * because tracking URLs live on the account's tracking domain. Some editors percent-encode the
 * asterisks.
 */
const UNSUBSCRIBE_PLACEHOLDER =
  /https?:\/\/[^\s<>"']*?\/u\.z\?(?:\*\*\*|%2a%2a%2a)uniqueid(?:\*\*\*|%2a%2a%2a)/gi;

const HTTP_URL = /^https?:\/\//i;
const LINK_TAG = /<(a|area)(?=[\s>/])/gi;
const ATTRIBUTE = /([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g;
const BARE_URL = /\bhttps?:\/\/[^\s<>"\u0080-\uffff]+/gi;
const URL_TEXT = /^(?:https?:\/\/|www\.)\S+$/i;

function replaceUnsubscribePlaceholders(
  text: string,
  rewrite: TrackingRewrite,
  counts: TrackingCounts,
): string {
  if (!/uniqueid/i.test(text)) return text;
  return text.replace(UNSUBSCRIBE_PLACEHOLDER, () => {
    counts.unsubscribeLinks++;
    return rewrite.unsubscribeUrl;
  });
}

/**
 * Tracking for a text/html part: the unsubscribe placeholder wherever it appears, then the
 * http(s) href of every <a> and <area> (not mailto:, tel:, #anchors or our own URLs; not a link
 * whose visible text is itself a URL unless the account asks, since a visible URL that differs
 * from the target is what phishing filters look for), then the open pixel before </body>.
 * `toUnicode` turns a URL of the working string into the Unicode the token carries.
 */
export function trackHtml(
  html: string,
  rewrite: TrackingRewrite,
  counts: TrackingCounts,
  toUnicode: (text: string) => string,
): string {
  let out = replaceUnsubscribePlaceholders(html, rewrite, counts);
  if (rewrite.clicks) out = trackHtmlLinks(out, rewrite, counts, toUnicode);
  if (rewrite.opens) {
    out = insertOpenPixel(out, rewrite);
    counts.openPixels++;
  }
  return out;
}

function trackHtmlLinks(
  html: string,
  rewrite: TrackingRewrite,
  counts: TrackingCounts,
  toUnicode: (text: string) => string,
): string {
  const pieces: string[] = [];
  let copied = 0;
  LINK_TAG.lastIndex = 0;
  for (let match = LINK_TAG.exec(html); match !== null; match = LINK_TAG.exec(html)) {
    const start = match.index;
    const end = tagEnd(html, start);
    const isAnchor = match[1]?.length === 1;
    const attributesFrom = start + 1 + (match[1]?.length ?? 0);
    const replaced = rewriteHref(html.slice(attributesFrom, end), (url) => {
      if (!HTTP_URL.test(url) || url.startsWith(`${rewrite.baseUrl}/`)) return null;
      if (isAnchor && !rewrite.trackUrlTextLinks && URL_TEXT.test(visibleText(html, end + 1))) {
        counts.urlTextLinksLeft++;
        return null;
      }
      counts.clicks++;
      return rewrite.clickUrl(toUnicode(url));
    });
    if (replaced !== null) {
      pieces.push(html.slice(copied, attributesFrom), replaced);
      copied = end;
    }
    LINK_TAG.lastIndex = end + 1;
  }
  if (copied === 0) return html;
  pieces.push(html.slice(copied));
  return pieces.join('');
}

/** The attributes with the href value replaced, or null when there is none or it stays. */
function rewriteHref(attributes: string, target: (url: string) => string | null): string | null {
  ATTRIBUTE.lastIndex = 0;
  for (let match = ATTRIBUTE.exec(attributes); match !== null; match = ATTRIBUTE.exec(attributes)) {
    const [whole, name, doubleQuoted, singleQuoted, bare] = match;
    if (name?.toLowerCase() !== 'href') continue;
    const raw = doubleQuoted ?? singleQuoted ?? bare;
    if (raw === undefined) return null;
    const replacement = target(decodeEntities(raw).trim());
    if (replacement === null) return null;
    const quote = singleQuoted !== undefined ? "'" : '"';
    const value = `${name}=${quote}${escapeAttribute(replacement)}${quote}`;
    return attributes.slice(0, match.index) + value + attributes.slice(match.index + whole.length);
  }
  return null;
}

/** The text a reader sees for the <a> whose start tag ends before `from`: up to </a>, tags removed. */
function visibleText(html: string, from: number): string {
  const close = html.slice(from, from + 4096).search(/<\/a[\s>]/i);
  const inner = close === -1 ? '' : html.slice(from, from + close);
  return decodeEntities(inner.replace(/<[^>]*>/g, ''))
    .replace(/\u00a0/g, ' ')
    .trim();
}

function insertOpenPixel(html: string, rewrite: TrackingRewrite): string {
  const pixel = `<img src="${escapeAttribute(rewrite.openPixelUrl)}" width="1" height="1" alt="" style="display:none;border:0">`;
  let at = -1;
  const bodyEnd = /<\/body\s*>/gi;
  for (let match = bodyEnd.exec(html); match !== null; match = bodyEnd.exec(html)) at = match.index;
  if (at === -1) {
    // No </body>: at the end of the part, before its final line breaks.
    at = html.length;
    while (at > 0 && /\s/.test(html.charAt(at - 1))) at--;
  }
  return html.slice(0, at) + pixel + html.slice(at);
}

/**
 * Tracking for a text/plain part: the unsubscribe placeholder, then every bare http(s) URL.
 * Trailing punctuation and an unbalanced closing bracket belong to the sentence, not the URL.
 */
export function trackPlainText(
  text: string,
  rewrite: TrackingRewrite,
  counts: TrackingCounts,
  toUnicode: (text: string) => string,
): string {
  const out = replaceUnsubscribePlaceholders(text, rewrite, counts);
  if (!rewrite.clicks || !/https?:\/\//i.test(out)) return out;
  return out.replace(BARE_URL, (found) => {
    const url = trimTrailingPunctuation(found);
    if (url.startsWith(`${rewrite.baseUrl}/`) || url.length <= 'https://'.length) return found;
    counts.clicks++;
    return rewrite.clickUrl(toUnicode(url)) + found.slice(url.length);
  });
}

function trimTrailingPunctuation(url: string): string {
  let end = url.length;
  for (;;) {
    const last = url.charAt(end - 1);
    if ('.,;:!?\'"*'.includes(last)) {
      end--;
    } else if (
      (last === ')' || last === ']') &&
      !balanced(url.slice(0, end), last === ')' ? '(' : '[', last)
    ) {
      end--;
    } else {
      return url.slice(0, end);
    }
  }
}

function balanced(text: string, open: string, close: string): boolean {
  return text.split(open).length >= text.split(close).length;
}

const NAMED_ENTITIES: Readonly<Record<string, string>> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: '\u00a0',
};

/** The entities that occur in URLs and link texts; others stay as written. */
export function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, entity: string) => {
    if (entity.startsWith('#')) {
      const code =
        entity[1] === 'x' || entity[1] === 'X'
          ? parseInt(entity.slice(2), 16)
          : parseInt(entity.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED_ENTITIES[entity.toLowerCase()] ?? whole;
  });
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
}
