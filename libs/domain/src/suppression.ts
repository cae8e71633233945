import { normaliseDomain } from './sender-authorisation.js';

/**
 * The key an address is listed under on a suppression list. The domain compares
 * case-insensitively (and an IDN by its ASCII form): DNS names are case-insensitive. The local
 * part compares exactly as given: RFC 5321 2.4 lets the receiving host treat it as
 * case-sensitive, so `Ann@example.com` and `ann@example.com` may be different mailboxes, and a
 * list must not stop mail to one because the other bounced.
 */
export function suppressionKey(address: string): string {
  const trimmed = address.trim();
  const at = trimmed.lastIndexOf('@');
  if (at <= 0) return trimmed;
  const domain = trimmed.slice(at + 1);
  return `${trimmed.slice(0, at)}@${normaliseDomain(domain) ?? domain.toLowerCase()}`;
}
