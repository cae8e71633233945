import { normaliseClientIp } from '@relay/persistence';

/** Longer queries are refused before any work: a click token carries its URL, a few kB at most. */
export const MAX_TOKEN_LENGTH = 8_192;

/**
 * The token of a tracking URL (`/o.z?<token>`): the whole query string, read raw, not as key=value.
 * Anything after an `&` is ignored (a gateway or analytics tool may append parameters) and a
 * percent-encoded token is decoded (base64url needs no encoding, but some rewriters encode anyway).
 */
export function tokenInUrl(url: string): string | undefined {
  const start = url.indexOf('?');
  if (start < 0) return undefined;
  const end = url.indexOf('&', start);
  const raw = url.slice(start + 1, end < 0 ? undefined : end);
  if (raw === '' || raw.length > MAX_TOKEN_LENGTH) return undefined;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/**
 * The click target as it may go into a Location header, or undefined when it is no http(s) URL:
 * a signed `javascript:` or `data:` link is still refused. The WHATWG serialisation percent-encodes
 * what a header cannot carry (non-ASCII), as a browser would before following it.
 */
export function followableUrl(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : undefined;
}

/** The client's address as the socket sees it, IPv4-mapped IPv6 brought to plain IPv4. */
export function clientIp(remoteAddress: string | undefined): string {
  if (!remoteAddress) return 'unknown';
  return normaliseClientIp(remoteAddress) ?? remoteAddress;
}

export const FORM_URLENCODED = 'application/x-www-form-urlencoded';
export const MULTIPART_FORM = 'multipart/form-data';

/** `type/subtype` of a Content-Type header, lower case, without parameters. */
export function mediaTypeOf(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

function multipartFields(contentType: string, body: string): Map<string, string> {
  const fields = new Map<string, string>();
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2];
  if (!boundary) return fields;
  for (const part of body.split(`--${boundary}`)) {
    const blank = /\r?\n\r?\n/.exec(part);
    if (!blank) continue;
    const headers = part.slice(0, blank.index);
    const name = /^content-disposition:[^\r\n]*;\s*name=(?:"([^"]*)"|([^;\s]+))/im.exec(headers);
    const key = name?.[1] ?? name?.[2];
    if (key === undefined || fields.has(key)) continue;
    fields.set(key, part.slice(blank.index + blank[0].length).replace(/\r?\n$/, ''));
  }
  return fields;
}

/** The fields of a form body (urlencoded or multipart/form-data); no fields for anything else. */
export function formFields(contentType: string | undefined, body: string): ReadonlyMap<string, string> {
  const type = mediaTypeOf(contentType);
  if (type === FORM_URLENCODED) return new Map(new URLSearchParams(body));
  if (type === MULTIPART_FORM) return multipartFields(contentType ?? '', body);
  return new Map();
}

/**
 * RFC 8058 section 3.1: a one-click unsubscription is a POST whose form body holds
 * `List-Unsubscribe=One-Click`; any other POST is the confirmation page's button.
 */
export function unsubscribeMethod(fields: ReadonlyMap<string, string>): 'one-click' | 'page' {
  return fields.get('List-Unsubscribe')?.trim() === 'One-Click' ? 'one-click' : 'page';
}

/** The string fields of a body the application's urlencoded parser has already read. */
export function parsedFormFields(body: object): ReadonlyMap<string, string> {
  return new Map(
    Object.entries(body).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
}
