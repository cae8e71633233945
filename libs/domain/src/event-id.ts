import { createHash } from 'node:crypto';

/** The relay's own UUID namespace for name-based event ids (RFC 9562 5.5). */
const NAMESPACE = Buffer.from('6f1c2b7e9d4a4c5e8b3a2f1e0d9c8b7a', 'hex');

/**
 * A name-based (version 5) UUID for an event that a reaction derives from its cause, e.g.
 * `eventIdFor(received.id, 'queued')`. Handling the same cause again yields the same id, so a
 * redelivered cause cannot put a second, different event into the log: the Postgres log skips a
 * known id and consumers de-duplicate on it.
 */
export function eventIdFor(...parts: readonly string[]): string {
  const hash = createHash('sha1').update(NAMESPACE).update(parts.join('\u0000')).digest();
  hash[6] = ((hash[6] ?? 0) & 0x0f) | 0x50;
  hash[8] = ((hash[8] ?? 0) & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
