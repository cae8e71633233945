import type { EntityManager } from 'typeorm';
import type { EventOfType, EventType, RelayEvent } from '@relay/domain';

/**
 * A read model built from the event log. The runner calls `apply` for each event of `eventTypes`
 * in log order per partition, inside the transaction that also stores the log position; `apply`
 * therefore writes only through `manager` and has no other side effect.
 */
export interface Projection<T extends EventType = EventType> {
  /** Stable name: keys its positions and names its consumer group (`projection-<name>`). */
  readonly name: string;
  readonly eventTypes: readonly T[];
  apply(event: EventOfType<T>, manager: EntityManager): Promise<void>;
  /**
   * Optional: the same effect as `apply` on each event in turn, for a projection that can read
   * and write once per batch instead of once per event. The runner prefers it when present.
   */
  applyBatch?(events: readonly EventOfType<T>[], manager: EntityManager): Promise<void>;
  /** Deletes every row of the read model (rebuildProjection, before a replay from the start). */
  reset(manager: EntityManager): Promise<void>;
}

/** Where an event sits in the log: structurally LogPosition of @relay/event-log. */
export interface ProjectionPosition {
  readonly partition: number;
  /** Compares as a string, in log order, within its partition. */
  readonly offset: string;
}

/** Structurally LoggedEvent of @relay/event-log. */
export interface ProjectedEvent {
  readonly event: RelayEvent;
  readonly position: ProjectionPosition;
}

/**
 * The part of the EventLog port (@relay/event-log) a projection runner uses. Written out here so
 * that libs/persistence does not depend on libs/event-log; an EventLog satisfies it as it is.
 */
export interface ProjectionLog {
  subscribe(options: {
    readonly group: string;
    handle(batch: readonly ProjectedEvent[]): Promise<void>;
    readonly maxBatchSize?: number;
    readonly types?: readonly EventType[];
  }): Promise<{ stop(): Promise<void> }>;
}

/** Structurally the relay's Logger (@relay/config), which this lib does not depend on. */
export interface ProjectionLogger {
  debug?(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  info(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  error(msg: string, fields?: Readonly<Record<string, unknown>>): void;
}
