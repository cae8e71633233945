import { createHash } from 'node:crypto';

/**
 * The VERP return path (`bounces+<token>@<bounce domain>`) that lets an asynchronous bounce name
 * the message (and recipient) it is about. The token is the relay message id, followed by
 * `-<recipient tag>` when the transaction had one recipient: the first 8 hex digits of SHA-256 of
 * the lower-cased recipient, short enough to keep the local part within RFC 5321's 64 octets.
 * A transaction with several recipients (one domain, one transaction) carries only the message
 * id; the DSN's Final-Recipient then says which recipient failed. The message id (64 random bits)
 * makes tokens unguessable.
 */
export const VERP_PREFIX = 'bounces+';

export function recipientTag(recipient: string): string {
  return createHash('sha256').update(recipient.toLowerCase()).digest('hex').slice(0, 8);
}

/** The return path for a transaction of `messageId`; pass `recipient` when it is the only one. */
export function verpReturnPath(messageId: string, bounceDomain: string, recipient?: string): string {
  const tag = recipient === undefined ? '' : `-${recipientTag(recipient)}`;
  return `${VERP_PREFIX}${messageId}${tag}@${bounceDomain}`;
}

export interface VerpToken {
  readonly messageId: string;
  /** Present when the transaction had a single recipient. */
  readonly recipientTag?: string;
}

/** Reads the token back from an address at the bounce domain; null for any other address. */
export function parseVerpAddress(address: string, bounceDomain: string): VerpToken | null {
  const at = address.lastIndexOf('@');
  if (at < 0 || address.slice(at + 1).toLowerCase() !== bounceDomain.toLowerCase()) return null;
  const local = address.slice(0, at).toLowerCase();
  if (!local.startsWith(VERP_PREFIX)) return null;
  const match = /^([0-9a-z]+)(?:-([0-9a-f]{8}))?$/.exec(local.slice(VERP_PREFIX.length));
  if (!match?.[1]) return null;
  return match[2] ? { messageId: match[1], recipientTag: match[2] } : { messageId: match[1] };
}
