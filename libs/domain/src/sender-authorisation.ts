import { domainToASCII } from 'node:url';

/**
 * Which From addresses an account may send as (`allowedFrom`). Each entry is one of:
 * - `*`: any address;
 * - `@example.com`: any address at exactly that domain (not its subdomains);
 * - `alice@example.com`: that address.
 *
 * Domains compare case-insensitively (and IDNs by their ASCII form); local parts compare exactly
 * as written, since RFC 5321 section 2.4 lets the receiving host treat them as case-sensitive and
 * an authorisation check must not widen what the account was given.
 */
export type AllowedFromEntry =
  | { readonly kind: 'any' }
  | { readonly kind: 'domain'; readonly domain: string }
  | { readonly kind: 'address'; readonly localPart: string; readonly domain: string };

export type SenderDecision =
  | { readonly allowed: true; readonly matched: string }
  | { readonly allowed: false; readonly reason: 'invalid-address' | 'not-in-allowed-from' };

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
/** dot-atom text of RFC 5322 3.2.3, plus any non-ASCII (RFC 6531 SMTPUTF8). */
const DOT_ATOM = /^[^\s\p{Cc}()<>[\]:;@\\,."]+(?:\.[^\s\p{Cc}()<>[\]:;@\\,."]+)*$/u;
const QUOTED = /^"(?:[^"\\\p{Cc}]|\\[\x20-\x7e])*"$/u;

/** The domain in its comparable form (lower-case ASCII, no trailing dot), or null when invalid. */
export function normaliseDomain(domain: string): string | null {
  const trimmed = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  if (trimmed === '' || /[\s@]/.test(trimmed)) return null;
  const ascii = domainToASCII(trimmed.toLowerCase());
  if (ascii === '' || ascii.length > 253) return null;
  return ascii.split('.').every((label) => LABEL.test(label)) ? ascii : null;
}

function isValidLocalPart(localPart: string): boolean {
  return (
    localPart.length > 0 && localPart.length <= 64 && (DOT_ATOM.test(localPart) || QUOTED.test(localPart))
  );
}

/** Splits at the last `@` (a quoted local part may itself contain one). */
function splitAddress(address: string): { localPart: string; domain: string } | null {
  const at = address.lastIndexOf('@');
  if (at <= 0) return null;
  return { localPart: address.slice(0, at), domain: address.slice(at + 1) };
}

/** Parses one `allowedFrom` entry; null when it is none of `*`, `@domain` or an address. */
export function parseAllowedFromEntry(entry: string): AllowedFromEntry | null {
  if (entry === '*') return { kind: 'any' };
  if (entry.startsWith('@')) {
    const domain = normaliseDomain(entry.slice(1));
    return domain ? { kind: 'domain', domain } : null;
  }
  const parts = splitAddress(entry);
  // `*@domain` is a valid address, but whoever writes it means `@domain`: refuse rather than guess.
  if (!parts || parts.localPart === '*' || !isValidLocalPart(parts.localPart)) return null;
  const domain = normaliseDomain(parts.domain);
  return domain ? { kind: 'address', localPart: parts.localPart, domain } : null;
}

/** The entries of `allowedFrom` that do not parse, for a validation message naming them. */
export function invalidAllowedFromEntries(allowedFrom: readonly string[]): string[] {
  return allowedFrom.filter((entry) => parseAllowedFromEntry(entry) === null);
}

/**
 * Decides whether an account with `allowedFrom` may send with `fromAddress` (the bare address of
 * the From header, without display name or angle brackets). The first matching entry is named in
 * the decision, for the log line.
 */
export function authoriseSender(allowedFrom: readonly string[], fromAddress: string): SenderDecision {
  const parts = splitAddress(fromAddress.trim());
  const domain = parts && isValidLocalPart(parts.localPart) ? normaliseDomain(parts.domain) : null;
  if (!parts || !domain) return { allowed: false, reason: 'invalid-address' };
  for (const entry of allowedFrom) {
    const rule = parseAllowedFromEntry(entry);
    if (!rule) continue;
    switch (rule.kind) {
      case 'any':
        return { allowed: true, matched: entry };
      case 'domain':
        if (rule.domain === domain) return { allowed: true, matched: entry };
        break;
      case 'address':
        if (rule.domain === domain && rule.localPart === parts.localPart) {
          return { allowed: true, matched: entry };
        }
        break;
    }
  }
  return { allowed: false, reason: 'not-in-allowed-from' };
}
