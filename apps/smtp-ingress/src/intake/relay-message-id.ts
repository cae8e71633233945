import { randomBytes } from 'node:crypto';

/**
 * The relay's id for an accepted message (`250 2.0.0 Ok: queued as <id>`): milliseconds since the
 * epoch in base 36 (sorts by time for the first few centuries) and 64 random bits, URL- and
 * filename-safe.
 */
export function newRelayMessageId(now = Date.now()): string {
  return now.toString(36).padStart(9, '0') + randomBytes(8).toString('hex');
}
