import { randomBytes } from 'node:crypto';

/**
 * The relay's id for a message (`250 2.0.0 Ok: queued as <id>`, and its own notifications):
 * milliseconds since the epoch in base 36 (sorts by time), then 64 random bits; URL- and
 * filename-safe.
 */
export function newRelayMessageId(now = Date.now()): string {
  return now.toString(36).padStart(9, '0') + randomBytes(8).toString('hex');
}

/** Ids from before this are not the relay's (it did not exist yet). */
const EARLIEST = Date.UTC(2020, 0, 1);
const RELAY_MESSAGE_ID = /^[0-9a-z]{9}[0-9a-f]{16}$/;

/**
 * When the relay made a message id of its own (its base-36 time prefix), for the report's
 * Arrival-Date; undefined for any other id.
 */
export function relayMessageIdTime(id: string, now = Date.now()): Date | undefined {
  if (!RELAY_MESSAGE_ID.test(id)) return undefined;
  const ms = parseInt(id.slice(0, 9), 36);
  return ms >= EARLIEST && ms <= now + 86_400_000 ? new Date(ms) : undefined;
}
