import type { DataSource, EntityManager } from 'typeorm';
import type { EventOfType, EventType, RelayEvent } from '@relay/domain';

/**
 * The part of the EventLog port (@relay/event-log) finding held mail needs, written out here so
 * that libs/persistence does not depend on libs/event-log; an EventLog satisfies it as it is.
 */
export interface HeldMailLog {
  readRange(range: {
    readonly from: Date;
    readonly to: Date;
    readonly accountId?: string;
    readonly types?: readonly EventType[];
  }): AsyncIterable<{ readonly event: RelayEvent }>;
}

export interface HeldMailQuery {
  readonly accountId: string;
  /** Inclusive lower bound on the QuotaExceeded's occurredAt. */
  readonly since: Date;
  /** Exclusive upper bound: when the resend was requested. */
  readonly until: Date;
  /**
   * The resend asking, when it is a real one: a QuotaExceeded it already replayed (before a crash,
   * or before its ResendRequested was delivered again) is not replayed by it a second time.
   */
  readonly resendId?: string;
}

/** One QuotaExceeded with the recipients it still holds back. */
export interface HeldMail {
  readonly quotaExceeded: EventOfType<'QuotaExceeded'>;
  /** The message it is about: the QuotaExceeded's messageId. */
  readonly messageId: string;
  /** Held recipients neither queued since (delivered, or on their way) nor resubmitted from it. */
  readonly recipients: readonly string[];
}

/** QuotaExceeded events per lookup statement. */
const CHUNK = 500;

const QUEUED_SQL = `
  SELECT d.message_id, d.recipient
  FROM unnest($1::text[], $2::text[]) AS k(message_id, recipient)
  JOIN delivery_recipients d ON d.message_id = k.message_id AND d.recipient = k.recipient`;

const RESUBMITTED_SQL = `
  SELECT quota_exceeded_event_id::text AS quota_exceeded_event_id, recipient, resend_id::text AS resend_id
  FROM resubmissions WHERE quota_exceeded_event_id = ANY($1::uuid[])`;

const pairKey = (messageId: string, recipient: string): string => `${messageId}\u0000${recipient}`;

/** The account's QuotaExceeded events of the window, each once (Kafka may hold one twice), in log order. */
async function quotaExceededIn(
  log: HeldMailLog,
  query: HeldMailQuery,
): Promise<EventOfType<'QuotaExceeded'>[]> {
  const seen = new Set<string>();
  const found: EventOfType<'QuotaExceeded'>[] = [];
  for await (const { event } of log.readRange({
    from: query.since,
    to: query.until,
    accountId: query.accountId,
    types: ['QuotaExceeded'],
  })) {
    if (event.type !== 'QuotaExceeded' || event.accountId !== query.accountId || seen.has(event.id)) continue;
    seen.add(event.id);
    found.push(event);
  }
  return found;
}

/**
 * What a resend of the account's mail held back in [since, until) would hand to the policy stage:
 * each QuotaExceeded of the window (read from the event log) with its recipients, less those
 * queued for that message since (a delivery_recipients row: delivered, bounced or on their way,
 * e.g. through an earlier resend) and those already resubmitted from that same QuotaExceeded.
 * QuotaExceeded events left with no recipient are left out.
 */
export async function findHeldMail(
  log: HeldMailLog,
  db: DataSource | EntityManager,
  query: HeldMailQuery,
): Promise<HeldMail[]> {
  const events = await quotaExceededIn(log, query);
  const held: HeldMail[] = [];
  for (let i = 0; i < events.length; i += CHUNK) {
    const chunk = events.slice(i, i + CHUNK).flatMap((event) =>
      // Without a message there is nothing to resend (and no key to resend it once).
      event.messageId === undefined
        ? []
        : [{ event, messageId: event.messageId, recipients: [...new Set(event.data.recipients)] }],
    );
    const pairs = chunk.flatMap((c) => c.recipients.map((recipient) => [c.messageId, recipient] as const));
    const queuedRows = await db.query<{ message_id: string; recipient: string }[]>(QUEUED_SQL, [
      pairs.map(([messageId]) => messageId),
      pairs.map(([, recipient]) => recipient),
    ]);
    const queued = new Set(queuedRows.map((r) => pairKey(r.message_id, r.recipient)));
    const resubmittedRows = await db.query<
      { quota_exceeded_event_id: string; recipient: string; resend_id: string }[]
    >(RESUBMITTED_SQL, [chunk.map((c) => c.event.id)]);
    const resubmitted = new Set(resubmittedRows.map((r) => pairKey(r.quota_exceeded_event_id, r.recipient)));
    const replayedByThisResend = new Set(
      resubmittedRows.filter((r) => r.resend_id === query.resendId).map((r) => r.quota_exceeded_event_id),
    );
    for (const { event, messageId, recipients } of chunk) {
      if (replayedByThisResend.has(event.id)) continue;
      const still = recipients.filter(
        (recipient) =>
          !queued.has(pairKey(messageId, recipient)) && !resubmitted.has(pairKey(event.id, recipient)),
      );
      if (still.length > 0) held.push({ quotaExceeded: event, messageId, recipients: still });
    }
  }
  return held;
}
