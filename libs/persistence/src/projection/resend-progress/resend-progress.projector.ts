import type { EntityManager } from 'typeorm';
import { eventIdFor, type EventOfType } from '@relay/domain';
import type { Projection } from '../projection.js';

export const RESEND_PROGRESS_EVENT_TYPES = [
  'MessageQueued',
  'QuotaExceeded',
  'Suppressed',
  'Delivered',
  'Bounced',
] as const;

export type ResendProgressEvent = EventOfType<(typeof RESEND_PROGRESS_EVENT_TYPES)[number]>;

/** What became of a resubmitted recipient (resubmissions.outcome); null: the policy stage has not decided. */
export type ResubmissionOutcome = 'queued' | 'delivered' | 'bounced' | 'suppressed' | 'over-quota';

/**
 * The id of the MessageResubmitted that replays `quotaExceededEventId` for a resend: a resend
 * replays a QuotaExceeded at most once, so the pair names the event.
 */
export const resubmissionEventId = (quotaExceededEventId: string, resendId: string): string =>
  eventIdFor(quotaExceededEventId, resendId);

interface Resubmission {
  readonly quotaExceededEventId: string;
  readonly recipient: string;
  readonly messageId: string;
  readonly resendId: string;
  outcome: ResubmissionOutcome | null;
  changed: boolean;
}

interface Counts {
  delivered: number;
  failed: number;
  overQuotaAgain: number;
}

// Rows found by a list of keys: planned per call, not prepared (see `prepared`).
const LOAD_SQL = `
  SELECT s.quota_exceeded_event_id::text AS quota_exceeded_event_id, s.recipient, s.message_id,
         s.resend_id::text AS resend_id, s.outcome
  FROM (SELECT DISTINCT * FROM unnest($1::text[], $2::text[]) AS k(message_id, recipient)) AS k
  JOIN resubmissions s ON s.message_id = k.message_id AND s.recipient = k.recipient
  ORDER BY s.created_at DESC`;

const SAVE_OUTCOMES_SQL = `
  UPDATE resubmissions s SET outcome = u.outcome
  FROM jsonb_to_recordset($1::jsonb) AS u(quota_exceeded_event_id uuid, recipient text, outcome text)
  WHERE s.quota_exceeded_event_id = u.quota_exceeded_event_id AND s.recipient = u.recipient`;

/**
 * Done once the worker has resubmitted all it meant to (resubmitted = total) and each of those has
 * an outcome. The worker checks the same when it finishes; whichever commits last sets it. Under
 * READ COMMITTED an UPDATE that waited for the row re-reads it, so the sums see both writers.
 */
const SAVE_COUNTS_SQL = `
  UPDATE resends r SET
    delivered = r.delivered + u.delivered,
    failed = r.failed + u.failed,
    over_quota_again = r.over_quota_again + u.over_quota_again,
    status = CASE
      WHEN r.status = 'running' AND r.resubmitted = r.total
       AND r.delivered + u.delivered + r.failed + u.failed + r.over_quota_again + u.over_quota_again
           >= r.resubmitted
      THEN 'done' ELSE r.status END,
    updated_at = now()
  FROM jsonb_to_recordset($1::jsonb) AS u(id uuid, delivered int, failed int, over_quota_again int)
  WHERE r.id = u.id`;

const pairKey = (messageId: string, recipient: string): string => `${messageId}\u0000${recipient}`;

/** The (message, recipient) pairs an event may be an outcome of a resubmission for. */
function pairsOf(event: ResendProgressEvent): [string, string][] {
  const messageId = event.messageId;
  if (messageId === undefined) return [];
  switch (event.type) {
    case 'MessageQueued':
    case 'QuotaExceeded':
      return event.data.resendId === undefined ? [] : event.data.recipients.map((r) => [messageId, r]);
    case 'Suppressed':
      return event.causationId === undefined ? [] : [[messageId, event.data.recipient]];
    case 'Delivered':
    case 'Bounced':
      return [[messageId, event.data.recipient]];
  }
}

/**
 * Projection "resend-progress": the outcome columns of resubmissions and the counters of resends
 * (migration 1764381200000-resends). The policy stage decides a resubmitted recipient like a new
 * one: MessageQueued or QuotaExceeded with the resend's id, or Suppressed caused by the
 * MessageResubmitted; then delivery says Delivered or Bounced (a DSN may bounce one after it was
 * delivered). Each outcome moves the recipient's resubmission row from the state it requires, so an
 * event the log holds twice counts once, and an outcome of a recipient that no resend handed back
 * (the first attempt of a message) finds no row and counts nothing.
 */
export class ResendProgressProjector implements Projection<ResendProgressEvent['type']> {
  readonly name = 'resend-progress';
  readonly eventTypes = RESEND_PROGRESS_EVENT_TYPES;

  async apply(event: ResendProgressEvent, manager: EntityManager): Promise<void> {
    await this.applyBatch([event], manager);
  }

  async applyBatch(events: readonly ResendProgressEvent[], manager: EntityManager): Promise<void> {
    const pairs = events.flatMap(pairsOf);
    if (pairs.length === 0) return;
    const loaded = await manager.query<
      {
        quota_exceeded_event_id: string;
        recipient: string;
        message_id: string;
        resend_id: string;
        outcome: ResubmissionOutcome | null;
      }[]
    >(LOAD_SQL, [pairs.map(([m]) => m), pairs.map(([, r]) => r)]);
    if (loaded.length === 0) return;
    // Newest first (LOAD_SQL's order): should two rows of a pair ever qualify, the latest resend wins.
    const byPair = new Map<string, Resubmission[]>();
    for (const row of loaded) {
      const key = pairKey(row.message_id, row.recipient);
      const rows = byPair.get(key) ?? [];
      byPair.set(key, rows);
      rows.push({
        quotaExceededEventId: row.quota_exceeded_event_id,
        recipient: row.recipient,
        messageId: row.message_id,
        resendId: row.resend_id,
        outcome: row.outcome,
        changed: false,
      });
    }
    const counts = new Map<string, Counts>();
    const count = (row: Resubmission, field: keyof Counts, by = 1): void => {
      const c = counts.get(row.resendId) ?? { delivered: 0, failed: 0, overQuotaAgain: 0 };
      counts.set(row.resendId, c);
      c[field] += by;
    };
    const move = (row: Resubmission | undefined, outcome: ResubmissionOutcome): Resubmission | undefined => {
      if (!row) return undefined;
      row.outcome = outcome;
      row.changed = true;
      return row;
    };
    for (const event of events) {
      const messageId = event.messageId;
      if (messageId === undefined) continue;
      const rowsOf = (recipient: string): readonly Resubmission[] =>
        byPair.get(pairKey(messageId, recipient)) ?? [];
      switch (event.type) {
        case 'MessageQueued': {
          const resendId = event.data.resendId;
          if (resendId === undefined) break;
          for (const recipient of event.data.recipients) {
            move(
              rowsOf(recipient).find((r) => r.resendId === resendId && r.outcome === null),
              'queued',
            );
          }
          break;
        }
        case 'QuotaExceeded': {
          const resendId = event.data.resendId;
          if (resendId === undefined) break;
          for (const recipient of event.data.recipients) {
            const row = move(
              rowsOf(recipient).find((r) => r.resendId === resendId && r.outcome === null),
              'over-quota',
            );
            if (row) count(row, 'overQuotaAgain');
          }
          break;
        }
        case 'Suppressed': {
          // Its cause is the MessageResubmitted whose id derives from the row's key.
          const row = move(
            rowsOf(event.data.recipient).find(
              (r) =>
                r.outcome === null &&
                resubmissionEventId(r.quotaExceededEventId, r.resendId) === event.causationId,
            ),
            'suppressed',
          );
          if (row) count(row, 'failed');
          break;
        }
        case 'Delivered': {
          const row = move(
            rowsOf(event.data.recipient).find((r) => r.outcome === 'queued'),
            'delivered',
          );
          if (row) count(row, 'delivered');
          break;
        }
        case 'Bounced': {
          const rows = rowsOf(event.data.recipient);
          const queued = move(
            rows.find((r) => r.outcome === 'queued'),
            'bounced',
          );
          if (queued) {
            count(queued, 'failed');
            break;
          }
          // A DSN that arrives after the remote accepted the message: it was not delivered after all.
          const delivered = move(
            rows.find((r) => r.outcome === 'delivered'),
            'bounced',
          );
          if (delivered) {
            count(delivered, 'delivered', -1);
            count(delivered, 'failed');
          }
          break;
        }
      }
    }
    const changed = [...byPair.values()].flat().filter((r) => r.changed);
    if (changed.length === 0) return;
    await manager.query(SAVE_OUTCOMES_SQL, [
      JSON.stringify(
        changed.map((r) => ({
          quota_exceeded_event_id: r.quotaExceededEventId,
          recipient: r.recipient,
          outcome: r.outcome,
        })),
      ),
    ]);
    const deltas = [...counts.entries()]
      .filter(([, c]) => c.delivered !== 0 || c.failed !== 0 || c.overQuotaAgain !== 0)
      .map(([id, c]) => ({
        id,
        delivered: c.delivered,
        failed: c.failed,
        over_quota_again: c.overQuotaAgain,
      }));
    if (deltas.length > 0) await manager.query(SAVE_COUNTS_SQL, [JSON.stringify(deltas)]);
  }

  /** Forgets every outcome; a resend that was done runs again until the replay has counted it. */
  async reset(manager: EntityManager): Promise<void> {
    await manager.query(`UPDATE resubmissions SET outcome = NULL WHERE outcome IS NOT NULL`);
    await manager.query(
      `UPDATE resends SET delivered = 0, failed = 0, over_quota_again = 0, updated_at = now(),
         status = CASE WHEN status = 'done' AND resubmitted > 0 THEN 'running' ELSE status END`,
    );
  }
}
