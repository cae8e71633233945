import { randomFillSync } from 'node:crypto';

/**
 * Random bits are drawn from a pool refilled 4 KB at a time, as randomUUID does: one call into
 * the CSPRNG per 512 ids instead of one per id, which showed in profiles of every append.
 */
const POOL_BYTES = 4_096;
const ID_RANDOM_BYTES = 8;
const pool = Buffer.alloc(POOL_BYTES);
let poolOffset = POOL_BYTES;

function randomHex(): string {
  if (poolOffset + ID_RANDOM_BYTES > POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const hex = pool.toString('hex', poolOffset, poolOffset + ID_RANDOM_BYTES);
  poolOffset += ID_RANDOM_BYTES;
  return hex;
}

/**
 * The relay's id for a message (`250 2.0.0 Ok: queued as <id>`, and its own notifications):
 * milliseconds since the epoch in base 36 (sorts by time), then 64 random bits; URL- and
 * filename-safe.
 */
export function newRelayMessageId(now = Date.now()): string {
  return now.toString(36).padStart(9, '0') + randomHex();
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
