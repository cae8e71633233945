import pg from 'pg';
import type { RelayEvent } from '@relay/domain';
import { OUTBOX_CHANNEL } from './outbox.js';

/** Structurally the relay's Logger (@relay/config), which this lib does not depend on. */
export interface OutboxRelayLogger {
  info(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  error(msg: string, fields?: Readonly<Record<string, unknown>>): void;
}

export interface OutboxRelayOptions {
  readonly url: string;
  /**
   * Appends to the event log and resolves once the events are durable (EventLog.append). Passed in
   * as a function so that libs/persistence does not depend on libs/event-log.
   */
  readonly append: (events: readonly RelayEvent[]) => Promise<void>;
  /** Rows moved per append (default 500). A crash re-appends at most this many. */
  readonly batchSize?: number;
  /** Fallback poll when no NOTIFY arrives, e.g. one lost while reconnecting (default 1 000 ms). */
  readonly pollIntervalMs?: number;
  /** How often a standby relay retries the lock held by the active one (default 2 000 ms). */
  readonly standbyRetryMs?: number;
  /**
   * True when `append` refused because the log already has an event with that id, as the Postgres
   * log does (unique event_id). Default: a Postgres unique violation (SQLSTATE 23505).
   */
  readonly isDuplicate?: (error: unknown) => boolean;
  readonly logger?: OutboxRelayLogger;
  readonly applicationName?: string;
}

/** Key of the session advisory lock that keeps one relay active across processes (bigint key space). */
const RELAY_LOCK = 7_251_003;
const DEFAULT_BATCH_SIZE = 500;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 10_000;

// Ordered by the bigint column, not by the text alias of the same name.
const SELECT_SQL = `SELECT id::text AS id, event FROM outbox ORDER BY outbox.id LIMIT $1`;
const DELETE_SQL = `DELETE FROM outbox WHERE id = ANY($1::bigint[])`;

interface OutboxRow {
  readonly id: string;
  readonly event: RelayEvent;
}

const isUniqueViolation = (error: unknown): boolean => (error as { code?: unknown } | null)?.code === '23505';

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** A sleep that stop(), a NOTIFY or a lost connection cuts short; a wake with no sleeper is kept for the next. */
class Wakeup {
  private pending = false;
  private waiter: (() => void) | undefined;

  wake(): void {
    if (this.waiter) this.waiter();
    else this.pending = true;
  }

  async sleep(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiter = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiter = done;
    });
  }
}

/**
 * Moves events from the outbox to the event log, in id order, batch by batch: append, then delete.
 *
 * Delivery is at least once: a relay that stops between an append and its delete (a crash, a lost
 * connection) leaves that batch in the outbox, and whoever relays next appends it again. Since a
 * batch is deleted before the next is read, that repeats at most the last batch; consumers
 * de-duplicate on the event id, and the Postgres log refuses a known id, which counts as done.
 *
 * One relay is active at a time across processes: it holds a session advisory lock on its own
 * connection, so the lock goes when the connection does. The others stand by and retry it.
 */
export class OutboxRelay {
  private readonly logger: OutboxRelayLogger;
  private readonly batchSize: number;
  private readonly isDuplicate: (error: unknown) => boolean;
  private readonly wakeup = new Wakeup();
  private client: pg.Client | undefined;
  private lost: Error | undefined;
  private running: Promise<void> | undefined;
  private stopping = false;
  private active = false;

  constructor(private readonly options: OutboxRelayOptions) {
    this.logger = options.logger ?? console;
    this.batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) {
      throw new RangeError(`batchSize must be a positive integer, got ${this.batchSize}`);
    }
    this.isDuplicate = options.isDuplicate ?? isUniqueViolation;
  }

  /** True while this relay holds the lock and moves events. */
  get isActive(): boolean {
    return this.active;
  }

  /** Starts relaying in the background (or standing by); connection errors are retried, not thrown. */
  start(): void {
    if (this.running) throw new Error('outbox relay already started');
    this.running = this.run();
  }

  /** Finishes the batch in hand (append and delete), then releases the lock and the connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeup.wake();
    await this.running;
  }

  private async run(): Promise<void> {
    let retryMs = RETRY_MIN_MS;
    while (!this.stopping) {
      try {
        await this.connect();
        retryMs = RETRY_MIN_MS;
        if (await this.acquireLock()) await this.relay();
      } catch (error) {
        if (this.stopping) break;
        this.logger.warn('outbox relay: connection failed, retrying', {
          error: messageOf(error),
          retryMs,
        });
      } finally {
        await this.disconnect();
      }
      if (this.stopping) break;
      await this.wakeup.sleep(retryMs);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    }
  }

  private async connect(): Promise<void> {
    this.lost = undefined;
    const client = new pg.Client({
      connectionString: this.options.url,
      application_name: this.options.applicationName ?? 'relay-outbox',
      keepAlive: true,
    });
    client.on('error', (error) => {
      if (this.client !== client) return;
      this.lost = error;
      this.wakeup.wake();
    });
    client.on('notification', () => this.wakeup.wake());
    this.client = client;
    await client.connect();
  }

  private async disconnect(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (this.active) this.logger.info('outbox relay: standing down');
    this.active = false;
    // Ending the session releases its advisory lock and its LISTEN.
    await client?.end().catch(() => undefined);
  }

  private query<R extends pg.QueryResultRow>(
    sql: string,
    params: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    if (this.lost) throw this.lost;
    if (!this.client) throw new Error('outbox relay: not connected');
    return this.client.query<R>(sql, params);
  }

  /** Waits, standing by, until this relay holds the lock; false when stopped first. */
  private async acquireLock(): Promise<boolean> {
    for (;;) {
      if (this.stopping) return false;
      const result = await this.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [
        RELAY_LOCK,
      ]);
      if (result.rows[0]?.locked === true) break;
      await this.wakeup.sleep(this.options.standbyRetryMs ?? 2_000);
    }
    await this.query(`LISTEN ${OUTBOX_CHANNEL}`);
    this.active = true;
    this.logger.info('outbox relay: active');
    return true;
  }

  private async relay(): Promise<void> {
    let retryMs = RETRY_MIN_MS;
    while (!this.stopping) {
      let moved: number;
      try {
        moved = await this.relayBatch();
        retryMs = RETRY_MIN_MS;
      } catch (error) {
        if (!(error instanceof AppendFailed)) throw error;
        this.logger.error('outbox relay: append failed, retrying', {
          error: messageOf(error.cause),
          retryMs,
        });
        await this.wakeup.sleep(retryMs);
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
        continue;
      }
      if (moved < this.batchSize) await this.wakeup.sleep(this.options.pollIntervalMs ?? 1_000);
      if (this.lost) throw this.lost;
    }
  }

  /** Moves one batch; returns how many rows it moved. */
  private async relayBatch(): Promise<number> {
    const { rows } = await this.query<OutboxRow>(SELECT_SQL, [this.batchSize]);
    if (rows.length === 0) return 0;
    await this.append(rows.map((row) => row.event));
    // A crash here, after the append and before the delete, appends this batch again: at least once.
    await this.query(DELETE_SQL, [rows.map((row) => row.id)]);
    return rows.length;
  }

  private async append(events: readonly RelayEvent[]): Promise<void> {
    try {
      await this.options.append(events);
      return;
    } catch (error) {
      if (!this.isDuplicate(error)) throw new AppendFailed(error);
    }
    // The log has some of these already: the batch was appended before a crash kept it from being
    // deleted. Append the rest one by one, in order, and count the known ones as done.
    for (const event of events) {
      try {
        await this.options.append([event]);
      } catch (error) {
        if (!this.isDuplicate(error)) throw new AppendFailed(error);
      }
    }
  }
}

/** The log refused or could not be reached: retry the batch, the outbox connection is fine. */
class AppendFailed extends Error {
  constructor(override readonly cause: unknown) {
    super(`append failed: ${messageOf(cause)}`);
  }
}
