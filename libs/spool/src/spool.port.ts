import type { Readable } from 'node:stream';

/** DI token for the Spool port. */
export const SPOOL = Symbol('SPOOL');

export interface SpooledBody {
  /** Claim check carried by the events (MessageReceived.spoolKey). */
  readonly key: string;
  /** Octets stored. */
  readonly size: number;
}

/** Thrown by `write` when the body grows past `maxSize`; nothing is kept. */
export class SpoolSizeExceededError extends Error {
  constructor(readonly maxSize: number) {
    super(`message exceeds the maximum size of ${maxSize} octets`);
  }
}

/**
 * Thrown by `read` for a key the spool does not hold (never written, removed, or swept by the
 * retention): a permanent condition, unlike a lost connection, so a worker must not retry it.
 */
export class SpoolBodyNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`no spooled body under key "${key}"`);
  }
}

/**
 * Message bodies, kept out of the events (claim check). Two adapters: a local directory (one
 * machine) and Postgres (chunked, when ingress and workers run on different machines).
 */
export interface Spool {
  /**
   * Streams `body` into the spool under a key derived from `messageId`. Resolves only once the
   * whole body is durable (fsynced file and directory, or committed rows); never holds the body
   * whole in memory. Rejects with SpoolSizeExceededError past `maxSize`, keeping nothing.
   * `messageId` is [A-Za-z0-9_-] only. A body once written is never replaced: a second write of
   * its id is rejected, or (local segments, keyed by place) stored apart under a key of its own.
   * `body` stays the caller's: it is never destroyed, and on a rejection the unread rest is left
   * in it, so the SMTP edge can still drain the DATA stream and answer the client.
   */
  write(messageId: string, body: Readable, maxSize?: number): Promise<SpooledBody>;
  /** The stored octets, streamed. Rejects with SpoolBodyNotFoundError when the key is unknown. */
  read(key: string): Promise<Readable>;
  /** Removes a body; removing an unknown key is not an error. */
  remove(key: string): Promise<void>;
  /** Removes every body written before `cutoff` (the retention sweep); returns how many. */
  removeOlderThan(cutoff: Date): Promise<number>;
}
