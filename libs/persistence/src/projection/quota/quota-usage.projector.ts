import type { EntityManager } from 'typeorm';
import type { EventOfType } from '@relay/domain';
import type { Projection } from '../projection.js';
import { prepared } from '../../prepared-statements.js';

export const QUOTA_EVENT_TYPES = ['MessageQueued'] as const;

export type QuotaEvent = EventOfType<(typeof QUOTA_EVENT_TYPES)[number]>;

/** What one MessageQueued adds to its account's month. */
export interface QueuedCount {
  readonly event_id: string;
  readonly account_id: string;
  readonly period: string;
  readonly messages: number;
  readonly bytes: number;
}

/**
 * The count of each event of a batch, once per event id: each queued recipient is one message
 * and the message's size. Suppressed and QuotaExceeded recipients never reach a MessageQueued, so
 * they do not count. An event with no account or no recipient adds nothing.
 */
export function queuedCounts(events: readonly QuotaEvent[]): QueuedCount[] {
  const counts = new Map<string, QueuedCount>();
  for (const event of events) {
    const recipients = event.data.recipients.length;
    if (event.accountId === null || recipients === 0 || counts.has(event.id)) continue;
    counts.set(event.id, {
      event_id: event.id,
      account_id: event.accountId,
      period: event.data.period,
      messages: recipients,
      bytes: recipients * event.data.size,
    });
  }
  return [...counts.values()];
}

/**
 * One statement per batch: record the batch's event ids, keep those not recorded before (a copy
 * of an event published twice is not), sum them per account and month, and add the sums. Rows in
 * key order, so two batches touching the same months lock them in the same order.
 */
const COUNT_SQL = prepared(`
  WITH batch AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(
      event_id uuid, account_id text, period text, messages bigint, bytes bigint)
  ), fresh AS (
    INSERT INTO quota_usage_events (event_id, period)
    SELECT event_id, period FROM batch
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
  )
  INSERT INTO quota_usage AS u (account_id, period, messages, bytes)
  SELECT b.account_id, b.period, sum(b.messages), sum(b.bytes)
  FROM batch b JOIN fresh f USING (event_id)
  GROUP BY b.account_id, b.period
  ORDER BY b.account_id, b.period
  ON CONFLICT (account_id, period) DO UPDATE SET
    messages = u.messages + EXCLUDED.messages,
    bytes = u.bytes + EXCLUDED.bytes`);

/**
 * Projection "quota": messages and bytes per account and calendar month (UTC), as the policy
 * stage queued them (migration 1764381100000-quota-usage). A MessageQueued counts each of its
 * recipients once and its size once per recipient, in the event's `period`; the runner applies
 * each log position once and quota_usage_events each event id once. Rows are sums over the
 * events, whatever their order: a rebuild gives the same rows.
 */
export class QuotaUsageProjector implements Projection<QuotaEvent['type']> {
  readonly name = 'quota';
  readonly eventTypes = QUOTA_EVENT_TYPES;

  async apply(event: QuotaEvent, manager: EntityManager): Promise<void> {
    await this.applyBatch([event], manager);
  }

  async applyBatch(events: readonly QuotaEvent[], manager: EntityManager): Promise<void> {
    const counts = queuedCounts(events);
    if (counts.length > 0) await manager.query(COUNT_SQL, [JSON.stringify(counts)]);
  }

  async reset(manager: EntityManager): Promise<void> {
    await manager.query(`TRUNCATE quota_usage, quota_usage_events`);
  }
}
