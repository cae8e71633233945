import type { EventType, RelayEvent } from '@relay/domain';

/** Where adapters write their log lines: structurally the relay's Logger (@relay/config), or console. */
export interface EventLogLogger {
  info(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  error(msg: string, fields?: Readonly<Record<string, unknown>>): void;
}

/** DI token for the EventLog port. */
export const EVENT_LOG = Symbol('EVENT_LOG');

/**
 * Where an event sits in the log. `offset` is opaque, but within one partition offsets compare as
 * strings in delivery order (adapters zero-pad them), so a consumer can store the last one it
 * applied and skip anything at or below it on redelivery.
 */
export interface LogPosition {
  readonly partition: number;
  readonly offset: string;
}

export interface LoggedEvent<E extends RelayEvent = RelayEvent> {
  readonly event: E;
  readonly position: LogPosition;
}

export interface SubscribeOptions {
  /** Consumer group: members share the partitions and the committed positions. */
  readonly group: string;
  /**
   * Handles a batch of events from one partition, in log order. The batch's positions are
   * committed only after the returned promise resolves; if it rejects, the same events are
   * delivered again after a pause (at least once). Events of one partition are never handled
   * concurrently; different partitions may be.
   */
  handle(batch: readonly LoggedEvent[]): Promise<void>;
  /** Largest batch handed to `handle` (default 500). */
  readonly maxBatchSize?: number;
  /**
   * Only events of these types are handed to `handle` (and only they are decoded); the group's
   * position still moves past the others. Absent: every event.
   */
  readonly types?: readonly EventType[];
}

export interface Subscription {
  /** Stops fetching, waits for the batch in hand to finish and commit, then leaves the group. */
  stop(): Promise<void>;
}

export interface ReadRange {
  /** Inclusive lower bound on `occurredAt`. */
  readonly from: Date;
  /** Exclusive upper bound on `occurredAt`. */
  readonly to: Date;
  readonly accountId?: string;
  readonly types?: readonly EventType[];
}

/**
 * The append-only event log. Two adapters implement it: Postgres (embedded default) and Kafka.
 * Both pass the same contract suite (event-log.contract.ts).
 */
export interface EventLog {
  /**
   * Appends events; resolves only once they are durable (committed in Postgres, acknowledged by
   * all in-sync replicas on Kafka). Events with the same accountId keep their order. Appending an
   * event whose id is already in the log is not an error (a retry after a crash): Postgres skips
   * it, Kafka may hold it twice, so consumers de-duplicate on their own keys.
   */
  append(events: readonly RelayEvent[]): Promise<void>;
  /** Joins `group` and delivers from its committed position, or from the start of the log if none. */
  subscribe(options: SubscribeOptions): Promise<Subscription>;
  /** Every event with `from <= occurredAt < to` (and the filters), in log order per partition. */
  readRange(range: ReadRange): AsyncIterable<LoggedEvent>;
  /** True when the log can be written and read right now (for /health). */
  isHealthy(): Promise<boolean>;
  /** Stops every subscription and releases connections. */
  close(): Promise<void>;
}
