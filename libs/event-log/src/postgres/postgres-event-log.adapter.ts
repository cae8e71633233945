import pg from 'pg';
import type { RelayEvent } from '@relay/domain';
import { AppendListener } from './append-listener.js';
import { CONNECT_TIMEOUT_MS, RECONNECT_MAX_MS, RECONNECT_MIN_MS } from './connection-timing.js';
import type {
  EventLog,
  LoggedEvent,
  LogPosition,
  ReadRange,
  SubscribeOptions,
  Subscription,
  EventLogLogger,
} from '../event-log.port.js';

export interface PostgresEventLogOptions {
  readonly url: string;
  /** Connections for appends, reads and health checks; each subscription has one more of its own. */
  readonly poolSize?: number;
  readonly logger?: EventLogLogger;
  readonly applicationName?: string;
  /** Fallback poll of an idle subscription, for a NOTIFY lost while reconnecting (default 1 000 ms). */
  readonly pollIntervalMs?: number;
  /** A standby subscription retries the group's lock this often (default 2 000 ms). */
  readonly standbyRetryMs?: number;
  /** A subscription commits its position at most this often, and when it stops (default 200 ms). */
  readonly commitIntervalMs?: number;
  /** How long a woken subscription waits for more appends before it reads (default 5 ms). */
  readonly notifyDelayMs?: number;
  /** Page size of readRange (default 500). */
  readonly readPageSize?: number;
}

/**
 * Woken on every commit of an append; the payload lists the event types appended (comma
 * separated), so a group that takes none of them stays asleep. Readers always re-query.
 */
export const EVENTS_CHANNEL = 'relay_events';

/** Class id of the group locks (two-int advisory key space; the migration lock uses the bigint space). */
const GROUP_LOCK_CLASS = 7_251_002;
const DEFAULT_BATCH_SIZE = 500;
const DEFAULT_POOL_SIZE = 10;
const MAX_FLUSH_EVENTS = 5_000;
const MAX_FLUSH_JSON_CHARS = 16 * 1024 * 1024;
const HEALTH_TIMEOUT_MS = 2_000;
const DISCONNECT_TIMEOUT_MS = 2_000;
const HELD_BACK_REPOLL_MIN_MS = 5;
const HELD_BACK_REPOLL_MAX_MS = 100;
const HANDLER_RETRY_MIN_MS = 250;
const HANDLER_RETRY_MAX_MS = 5_000;

/**
 * One statement, so an autocommit append costs one round trip. The envelope array is ordered by
 * its ordinality so `position` follows the callers' order; pg_notify is delivered at commit only,
 * and a data-modifying CTE runs to completion even though the outer SELECT does not read it.
 */
const INSERT_SQL = `
  WITH appended AS (
    INSERT INTO event_log (event_id, type, account_id, message_id, occurred_at, payload)
    SELECT (e->>'id')::uuid, e->>'type', e->>'accountId', e->>'messageId', (e->>'occurredAt')::timestamptz, e
    FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS batch(e, n)
    ORDER BY n
    ON CONFLICT (event_id) DO NOTHING
  )
  SELECT pg_notify('${EVENTS_CHANNEL}', (SELECT string_agg(DISTINCT e->>'type', ',') FROM jsonb_array_elements($1::jsonb) AS e))`;

/**
 * Gap-free read: a position is taken at insert but becomes visible at commit, so rows are read
 * in (tx_id, position) order and only below the oldest running transaction, where nothing can
 * commit any more (the row comparison is an index condition on event_log_tx_position). `held`
 * says, from the same snapshot, whether committed rows wait above that horizon; they are all past
 * the cursor, because the horizon never moves back and the cursor only ever came from below it.
 * (max() reads the index end; an EXISTS on `tx_id >= horizon` was planned as a sequential scan.)
 * No ready row leaves one row with null columns, which still carries `held`.
 */
const READ_SQL = `
  SELECT horizon.held, ready.tx_text, ready.position_text, ready.payload
  FROM (
    SELECT COALESCE((SELECT max(tx_id) FROM event_log) >= pg_snapshot_xmin(pg_current_snapshot()), false) AS held
  ) AS horizon
  LEFT JOIN LATERAL (
    SELECT tx_id, position, tx_id::text AS tx_text, position::text AS position_text,
      -- Rows of types the group does not take still move its cursor, without their payload.
      CASE WHEN $4::text[] IS NULL OR type = ANY($4::text[]) THEN payload END AS payload
    FROM event_log
    WHERE (tx_id, position) > ($1::xid8, $2::bigint)
      AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY tx_id, position
    LIMIT $3
  ) AS ready ON true
  ORDER BY ready.tx_id, ready.position`;

/**
 * readRange pages with a keyset but filters every page by the snapshot taken at its start, so a
 * transaction committing mid-replay can neither slip in behind the cursor nor show up in part.
 */
const READ_RANGE_SQL = `
  SELECT tx_id::text AS tx_text, position::text AS position_text, payload
  FROM event_log
  WHERE occurred_at >= $1 AND occurred_at < $2
    AND ($3::text IS NULL OR account_id = $3)
    AND ($4::text[] IS NULL OR type = ANY($4::text[]))
    AND pg_visible_in_snapshot(tx_id, $5::pg_snapshot)
    AND (tx_id, position) > ($6::xid8, $7::bigint)
  ORDER BY tx_id, position
  LIMIT $8`;

const LOAD_POSITION_SQL = `
  SELECT tx_id::text AS tx_text, position::text AS position_text
  FROM event_log_consumer_positions WHERE group_name = $1`;

/**
 * The statements every message passes through go as named (prepared) statements: Postgres then
 * parses and analyses each once per connection instead of on every call, which showed as a
 * sizeable share of its CPU under load.
 */
const APPEND_STATEMENT = { name: 'relay_event_log_append', text: INSERT_SQL } as const;
const READ_STATEMENT = { name: 'relay_event_log_read', text: READ_SQL } as const;

const COMMIT_POSITION_SQL = `
  INSERT INTO event_log_consumer_positions (group_name, tx_id, position)
  VALUES ($1, $2::xid8, $3::bigint)
  ON CONFLICT (group_name) DO UPDATE
    SET tx_id = EXCLUDED.tx_id, position = EXCLUDED.position, updated_at = now()`;
const COMMIT_POSITION_STATEMENT = {
  name: 'relay_event_log_commit_position',
  text: COMMIT_POSITION_SQL,
} as const;

interface Queryable {
  query(text: string, values?: unknown[]): Promise<pg.QueryResult>;
}

interface Cursor {
  readonly txId: string;
  readonly position: string;
}

/** Text, not numbers: xid8 and bigint exceed a double. Named apart so ORDER BY sorts the real columns. */
interface CursorRow {
  tx_text: string;
  position_text: string;
}

interface EventRow extends CursorRow {
  payload: RelayEvent;
}

/** A row of a type the group does not take comes without its payload. */
type ReadRow = { held: boolean } & (
  EventRow | (CursorRow & { payload: null }) | { tx_text: null; position_text: null; payload: null }
);

const cursorOf = (row: CursorRow): Cursor => ({ txId: row.tx_text, position: row.position_text });

const LOG_START: Cursor = { txId: '0', position: '0' };

/**
 * Writes events the way every append does, in the caller's transaction if it has one open (the
 * contract tests hold such a transaction to commit out of order). Nothing is visible, and no
 * consumer is woken, before that transaction commits.
 */
export async function insertEvents(db: Queryable, events: readonly RelayEvent[]): Promise<void> {
  if (events.length === 0) return;
  await db.query(INSERT_SQL, [JSON.stringify(events)]);
}

/** Offsets compare as strings in delivery order: both parts are zero-padded to the width of a uint64. */
function offsetOf(cursor: Cursor): string {
  return `${cursor.txId.padStart(20, '0')}:${cursor.position.padStart(20, '0')}`;
}

function toLogged(row: EventRow): LoggedEvent {
  const position: LogPosition = { partition: 0, offset: offsetOf(cursorOf(row)) };
  return { event: row.payload, position };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Errors caused by the events themselves (bad uuid or timestamp), not by the connection. */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
    // The loser of the race must not surface later as an unhandled rejection.
    work.catch(() => undefined);
  }
}

interface PendingAppend {
  /** The call's events as a JSON array without its brackets, ready to be joined with others. */
  readonly json: string;
  readonly count: number;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * The Postgres event log: one global order, consumer groups with one active member each (the
 * others stand by on the group's advisory lock), LISTEN/NOTIFY plus a fallback poll to wake them.
 */
export class PostgresEventLog implements EventLog {
  private readonly pool: pg.Pool;
  private readonly logger: EventLogLogger;
  private readonly subscriptions = new Set<PostgresSubscription>();
  /** Started by the first subscription: wakes them all. */
  private listener: AppendListener | undefined;
  private readonly queue: PendingAppend[] = [];
  private draining: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  /** Stays true while close() waits for the subscriptions: a handler in flight may still append. */
  private acceptingAppends = true;

  private constructor(private readonly options: PostgresEventLogOptions) {
    this.logger = options.logger ?? console;
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? DEFAULT_POOL_SIZE,
      application_name: options.applicationName ?? 'relay-event-log',
      keepAlive: true,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    // An idle pooled connection that dies (server restart) is replaced on the next checkout.
    this.pool.on('error', (error) => this.logger.warn(`event-log: idle connection lost: ${error.message}`));
  }

  /** Opens the pool and checks the server answers; the schema comes from the migrations. */
  static async connect(options: PostgresEventLogOptions): Promise<PostgresEventLog> {
    const log = new PostgresEventLog(options);
    try {
      await log.pool.query('SELECT 1');
    } catch (error) {
      await log.pool.end().catch(() => undefined);
      throw error;
    }
    return log;
  }

  /**
   * Concurrent calls are group-committed: calls that arrive while a flush is in flight are written
   * together by the next one, in arrival order, in one transaction that resolves them all after
   * COMMIT. So a caller's events never interleave with another's, and a caller that awaits
   * before appending again sees its events in that order.
   */
  append(events: readonly RelayEvent[]): Promise<void> {
    if (!this.acceptingAppends) return Promise.reject(new Error('event log is closed'));
    if (events.length === 0) return Promise.resolve();
    let json: string;
    try {
      json = JSON.stringify(events).slice(1, -1);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ json, count: events.length, resolve, reject });
      // Started a microtask later, so calls made in the same tick (Promise.all) share the first flush.
      this.draining ??= Promise.resolve().then(() => this.drain());
    });
  }

  private async drain(): Promise<void> {
    for (;;) {
      const batch = this.takeFlushBatch();
      if (batch.length === 0) {
        // Cleared in the same tick as the empty check, so no append can queue unseen.
        this.draining = undefined;
        return;
      }
      await this.flush(batch);
    }
  }

  private takeFlushBatch(): PendingAppend[] {
    const batch: PendingAppend[] = [];
    let events = 0;
    let chars = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      if (
        batch.length > 0 &&
        (events + next.count > MAX_FLUSH_EVENTS || chars + next.json.length > MAX_FLUSH_JSON_CHARS)
      )
        break;
      batch.push(this.queue.shift()!);
      events += next.count;
      chars += next.json.length;
    }
    return batch;
  }

  /** Never rejects: every outcome is handed to the waiting callers. */
  private async flush(batch: readonly PendingAppend[]): Promise<void> {
    try {
      await this.pool.query({ ...APPEND_STATEMENT, values: [`[${batch.map((p) => p.json).join(',')}]`] });
      for (const pending of batch) pending.resolve();
      return;
    } catch (error) {
      if (batch.length === 1 || !isDataError(error)) {
        for (const pending of batch) pending.reject(error);
        return;
      }
    }
    // One caller's bad events (a duplicate id, say) must not fail the others it was grouped with.
    for (const pending of batch) {
      try {
        await this.pool.query({ ...APPEND_STATEMENT, values: [`[${pending.json}]`] });
        pending.resolve();
      } catch (error) {
        pending.reject(error);
      }
    }
  }

  async subscribe(options: SubscribeOptions): Promise<PostgresSubscription> {
    if (this.closing) throw new Error('event log is closed');
    const maxBatchSize = options.maxBatchSize ?? DEFAULT_BATCH_SIZE;
    if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
      throw new RangeError(`maxBatchSize must be a positive integer, got ${maxBatchSize}`);
    }
    // LISTEN is in place before the subscription's first read, so no append can slip between.
    this.listener ??= new AppendListener({
      url: this.options.url,
      channel: EVENTS_CHANNEL,
      applicationName: `${this.options.applicationName ?? 'relay-event-log'}:listener`,
      logger: this.logger,
      onAppend: (payload) => {
        for (const subscription of this.subscriptions) subscription.notify(payload);
      },
      onGap: () => {
        for (const subscription of this.subscriptions) subscription.notify(undefined);
      },
    });
    await this.listener.ready;
    const subscription = new PostgresSubscription({
      url: this.options.url,
      applicationName: `${this.options.applicationName ?? 'relay-event-log'}:${options.group}`,
      group: options.group,
      handle: (batch) => options.handle(batch),
      maxBatchSize,
      types: options.types ? [...options.types] : null,
      pollIntervalMs: this.options.pollIntervalMs ?? 1_000,
      standbyRetryMs: this.options.standbyRetryMs ?? 2_000,
      commitIntervalMs: this.options.commitIntervalMs ?? 200,
      notifyDelayMs: this.options.notifyDelayMs ?? 5,
      logger: this.logger,
      onStopped: (s) => this.subscriptions.delete(s),
    });
    this.subscriptions.add(subscription);
    await subscription.ready;
    return subscription;
  }

  async *readRange(range: ReadRange): AsyncIterable<LoggedEvent> {
    if (range.types?.length === 0) return;
    const pageSize = this.options.readPageSize ?? DEFAULT_BATCH_SIZE;
    const snapshot = await this.pool.query<{ snapshot: string }>(
      'SELECT pg_current_snapshot()::text AS snapshot',
    );
    const params = [
      range.from,
      range.to,
      range.accountId ?? null,
      range.types ?? null,
      snapshot.rows[0]!.snapshot,
    ];
    let cursor = LOG_START;
    for (;;) {
      const page = await this.pool.query<EventRow>(READ_RANGE_SQL, [
        ...params,
        cursor.txId,
        cursor.position,
        pageSize,
      ]);
      for (const row of page.rows) yield toLogged(row);
      const last = page.rows.at(-1);
      if (!last || page.rows.length < pageSize) return;
      cursor = cursorOf(last);
    }
  }

  /**
   * Healthy means an append would not be refused outright: a primary (a server in recovery answers
   * SELECT 1 but refuses appends), not read-only, where this role may insert into event_log and
   * draw its positions. A missing table makes the query itself fail, which reads as unhealthy.
   */
  async isHealthy(): Promise<boolean> {
    if (this.closing) return false;
    try {
      const result = await withTimeout(
        this.pool.query<{ writable: boolean }>(
          `SELECT NOT pg_is_in_recovery()
             AND current_setting('transaction_read_only') = 'off'
             AND has_table_privilege('event_log', 'INSERT')
             AND has_sequence_privilege(pg_get_serial_sequence('event_log', 'position'), 'USAGE')
             AS writable`,
        ),
        HEALTH_TIMEOUT_MS,
        'health check',
      );
      return result.rows[0]?.writable === true;
    } catch {
      return false;
    }
  }

  /** Stops the subscriptions, writes what was appended until then, and ends the pool. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.subscriptions].map((s) => s.stop()));
      await this.listener?.stop();
      this.acceptingAppends = false;
      await this.draining;
      await this.pool.end();
    })();
    return this.closing;
  }
}

interface SubscriptionSettings {
  readonly url: string;
  readonly applicationName: string;
  readonly group: string;
  readonly handle: (batch: readonly LoggedEvent[]) => Promise<void>;
  readonly maxBatchSize: number;
  /** Event types handed to `handle`; null: all. */
  readonly types: readonly string[] | null;
  readonly pollIntervalMs: number;
  readonly standbyRetryMs: number;
  readonly commitIntervalMs: number;
  readonly notifyDelayMs: number;
  readonly logger: EventLogLogger;
  onStopped(subscription: PostgresSubscription): void;
}

/** A connection of the subscription; `lost` is set once it errored and must not be trusted any more. */
interface Connection {
  readonly client: pg.Client;
  lost?: Error;
}

/**
 * One group member. Its own connection holds the group's session advisory lock, reads
 * and commits positions: if that connection drops, the lock goes with it, and a position can no
 * longer be committed by a member that lost the group to a standby.
 */
export class PostgresSubscription implements Subscription {
  /** Settles once the first attempt to join is over: active, standing by, or failed (retrying). */
  readonly ready: Promise<void>;
  private readonly done: Promise<void>;
  private readonly logger: EventLogLogger;
  private markReady!: () => void;
  private stopping = false;
  private active = false;
  private notified = false;
  private wakeUp: { wake(): void; onNotify: boolean } | undefined;
  private stopped: Promise<void> | undefined;
  private current: Connection | undefined;

  constructor(private readonly settings: SubscriptionSettings) {
    this.logger = settings.logger;
    this.ready = new Promise<void>((resolve) => {
      this.markReady = resolve;
    });
    this.done = this.run().catch((error: unknown) => {
      this.logger.error(`event-log: group=${settings.group} subscription failed: ${messageOf(error)}`);
    });
  }

  /** True while this member holds the group and delivers; false while it stands by or reconnects. */
  get isActive(): boolean {
    return this.active;
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.wakeUp?.wake();
      await this.done;
      this.settings.onStopped(this);
    })();
    return this.stopped;
  }

  private async run(): Promise<void> {
    const { group } = this.settings;
    let reconnectDelay = RECONNECT_MIN_MS;
    while (!this.stopping) {
      let failed = false;
      let connection: Connection | undefined;
      try {
        connection = await this.connect();
        reconnectDelay = RECONNECT_MIN_MS;
        if (await this.acquireGroup(connection)) await this.consume(connection);
      } catch (error) {
        failed = !this.stopping;
        if (failed) {
          this.logger.error(
            `event-log: group=${group} connection failed, retrying in ${reconnectDelay} ms: ${messageOf(error)}`,
          );
        }
      } finally {
        if (this.active) this.logger.info(`event-log: group=${group} released`);
        this.active = false;
        this.current = undefined;
        // Disconnect before backing off: a session that is still open would keep the group locked.
        if (connection) await this.disconnect(connection);
      }
      this.markReady();
      if (failed) {
        await this.pause(reconnectDelay, false);
        reconnectDelay = Math.min(reconnectDelay * 2, RECONNECT_MAX_MS);
      }
    }
    this.markReady();
  }

  private async connect(): Promise<Connection> {
    const client = new pg.Client({
      connectionString: this.settings.url,
      application_name: this.settings.applicationName,
      keepAlive: true,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    const connection: Connection = { client };
    this.current = connection;
    // Events of a connection already given up (its own end(), say) must not cut the backoff short.
    const lose = (error: Error): void => {
      connection.lost ??= error;
      if (this.current === connection) this.wakeUp?.wake();
    };
    client.on('error', lose);
    client.on('end', () => lose(new Error('connection ended')));
    await client.connect();
    return connection;
  }

  /**
   * An append's NOTIFY, from the log's listener (`payload`: the types appended; undefined: any,
   * after the listener lost its connection). A group that takes none of the types sleeps on.
   */
  notify(payload: string | undefined): void {
    if (this.current === undefined || this.notified) return;
    const types = this.settings.types;
    if (types && payload && !payload.split(',').some((type) => types.includes(type))) return;
    this.notified = true;
    // Waiting a moment lets one read take the events of several appends instead of one query
    // (and one position) per group per append.
    const wakeUp = this.wakeUp;
    if (wakeUp?.onNotify) setTimeout(() => wakeUp.wake(), this.settings.notifyDelayMs);
  }

  /** Ending the session releases the lock, whatever state the loop was in. */
  private async disconnect(connection: Connection): Promise<void> {
    try {
      await withTimeout(connection.client.end(), DISCONNECT_TIMEOUT_MS, 'disconnect');
    } catch (error) {
      this.logger.warn(`event-log: group=${this.settings.group} disconnect: ${messageOf(error)}`);
    }
  }

  private async query<R extends pg.QueryResultRow>(
    connection: Connection,
    statement: string | { readonly name: string; readonly text: string },
    values: unknown[],
  ): Promise<R[]> {
    if (connection.lost) throw connection.lost;
    const result =
      typeof statement === 'string'
        ? await connection.client.query<R>(statement, values)
        : await connection.client.query<R>({ ...statement, values });
    return result.rows;
  }

  /** Returns true with the lock held, false if stopped while standing by. */
  private async acquireGroup(connection: Connection): Promise<boolean> {
    const { group } = this.settings;
    let announced = false;
    while (!this.stopping) {
      const [row] = await this.query<{ locked: boolean }>(
        connection,
        'SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked',
        [GROUP_LOCK_CLASS, group],
      );
      if (row?.locked) return true;
      if (!announced) {
        this.logger.info(`event-log: group=${group} held by another member, standing by`);
        announced = true;
      }
      this.markReady();
      await this.pause(this.settings.standbyRetryMs, false);
      if (connection.lost) throw connection.lost;
    }
    return false;
  }

  private async consume(connection: Connection): Promise<void> {
    const { group, maxBatchSize, handle } = this.settings;
    // A position lost in a server crash only means redelivery (at least once), so its commit need
    // not wait for the WAL flush that appends are already queuing for.
    await this.query(connection, 'SET synchronous_commit = off', []);
    // The read is the same keyset scan whatever the cursor (its index condition holds parameters
    // alone): planning it anew on every call cost about three quarters of its CPU in Postgres.
    await this.query(connection, 'SET plan_cache_mode = force_generic_plan', []);
    const [stored] = await this.query<CursorRow>(connection, LOAD_POSITION_SQL, [group]);
    // Only committed positions are ever kept here, so a redelivery restarts from this cursor.
    let cursor: Cursor = stored ? cursorOf(stored) : LOG_START;
    this.active = true;
    this.markReady();
    this.logger.info(`event-log: group=${group} active from ${stored ? offsetOf(cursor) : 'the start'}`);

    let failures = 0;
    let heldBackDelay = HELD_BACK_REPOLL_MIN_MS;
    // Positions are committed at most every commitIntervalMs (and always before stopping): with
    // many consumer groups each batch of a few events would otherwise cost every group an UPDATE.
    // A crash then redelivers at most that interval's events, which at-least-once allows.
    let handled: Cursor | undefined;
    let lastCommit = Date.now();
    const commitHandled = async (): Promise<void> => {
      if (!handled) return;
      await this.query(connection, COMMIT_POSITION_STATEMENT, [group, handled.txId, handled.position]);
      handled = undefined;
      lastCommit = Date.now();
    };
    try {
      while (!this.stopping) {
        if (handled && Date.now() - lastCommit >= this.settings.commitIntervalMs) await commitHandled();
        this.notified = false;
        const result = await this.query<ReadRow>(connection, READ_STATEMENT, [
          cursor.txId,
          cursor.position,
          maxBatchSize,
          this.settings.types,
        ]);
        const held = result[0]?.held === true;
        const rows = result.filter((row): row is ReadRow & CursorRow => row.tx_text !== null);
        const last = rows.at(-1);
        const wanted = rows.filter((row): row is ReadRow & EventRow => row.payload !== null);
        if (last) {
          try {
            if (wanted.length > 0) await handle(wanted.map(toLogged));
          } catch (error) {
            failures++;
            const delay = Math.min(HANDLER_RETRY_MIN_MS * 2 ** (failures - 1), HANDLER_RETRY_MAX_MS);
            this.logger.error(
              `event-log: group=${group} handler failed on ${rows.length} events from ${offsetOf(cursorOf(rows[0]!))}, redelivering in ${delay} ms: ${messageOf(error)}`,
            );
            await this.pause(delay, false);
            continue;
          }
          failures = 0;
          heldBackDelay = HELD_BACK_REPOLL_MIN_MS;
          cursor = cursorOf(last);
          handled = cursor;
          if (rows.length === maxBatchSize) continue;
        }
        if (held) {
          // Committed events wait behind a running transaction, whose end sends no NOTIFY unless it appended.
          await this.pause(heldBackDelay, true);
          heldBackDelay = Math.min(heldBackDelay * 2, HELD_BACK_REPOLL_MAX_MS);
          continue;
        }
        heldBackDelay = HELD_BACK_REPOLL_MIN_MS;
        if (this.notified) continue;
        // Everything visible was read; whatever commits later sends a NOTIFY, and the poll covers
        // one missed while reconnecting. A position still to commit bounds the nap.
        const untilCommit = handled
          ? Math.max(0, this.settings.commitIntervalMs - (Date.now() - lastCommit))
          : Infinity;
        await this.pause(Math.min(this.settings.pollIntervalMs, untilCommit), true);
      }
    } finally {
      // Stopping (or a lost connection): what was handled is committed if the connection still can.
      if (!connection.lost) await commitHandled().catch(() => undefined);
    }
  }

  /** Sleeps up to `ms`; stop() and a lost connection always cut it short, a NOTIFY when asked. */
  private pause(ms: number, onNotify: boolean): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        if (this.wakeUp?.wake === wake) this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakeUp = { wake, onNotify };
    });
  }
}
