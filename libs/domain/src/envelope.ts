/**
 * The envelope every domain event travels in, on the Postgres log and on Kafka (`relay.events`).
 * Field names and `type` strings are a public contract for analytics consumers: see docs/events.md.
 */
export interface EventEnvelope<TType extends string, TData> {
  /** Unique event id (UUID v4); consumers de-duplicate on it. */
  readonly id: string;
  readonly type: TType;
  /** Schema version of `data` for this type; bumped on an incompatible change. */
  readonly version: number;
  /** ISO 8601 UTC timestamp of when the fact happened; replay by time uses it. */
  readonly occurredAt: string;
  /**
   * The account the event belongs to and the partition key on Kafka. Null only for a RelayDenied
   * of a client that no account matched (no AUTH, IP in no allow-list).
   */
  readonly accountId: string | null;
  /** The relay's message id (as in `250 2.0.0 Ok: queued as <id>`), when the event is about one message. */
  readonly messageId?: string;
  /** The id of the event that caused this one. */
  readonly causationId?: string;
  readonly data: TData;
}
