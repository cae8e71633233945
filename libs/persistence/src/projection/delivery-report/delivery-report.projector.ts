import type { EntityManager } from 'typeorm';
import type { Projection } from '../projection.js';
import {
  DELIVERY_REPORT_EVENT_TYPES,
  evolveReport,
  type DeliveryReportEvent,
  type MessageState,
  type RecipientState,
} from './delivery-report.js';
import {
  MESSAGE_REPORT_COLUMNS,
  messageSummaryOf,
  RECIPIENT_REPORT_COLUMNS,
  recipientReportOf,
  type MessageReportRow,
  type RecipientReportRow,
} from './delivery-report-rows.js';
import { prepared } from '../../prepared-statements.js';

interface RecipientRow extends RecipientReportRow {
  message_id: string;
  updated_at: Date;
}

// Rows found by a list of keys: planned per call, not prepared (see `prepared`).
const LOAD_MESSAGES_SQL = `
  SELECT ${MESSAGE_REPORT_COLUMNS} FROM message_reports WHERE message_id = ANY($1::text[])`;

const LOAD_RECIPIENTS_SQL = `
  SELECT message_id, ${RECIPIENT_REPORT_COLUMNS}, updated_at
  FROM recipient_reports WHERE message_id = ANY($1::text[])`;

/** One statement for every message of the batch; the rows come as a JSON array of row objects. */
const SAVE_MESSAGES_SQL = prepared(`
  INSERT INTO message_reports AS m
    (message_id, account_id, mail_from, from_address, subject, size, recipients_count, status,
     received_at, updated_at)
  SELECT message_id, account_id, mail_from, from_address, subject, size, recipients_count, status,
         received_at, updated_at
  FROM jsonb_to_recordset($1::jsonb) AS r(
    message_id text, account_id text, mail_from text, from_address text, subject text, size bigint,
    recipients_count int, status text, received_at timestamptz, updated_at timestamptz)
  ON CONFLICT (message_id) DO UPDATE SET
    account_id = EXCLUDED.account_id,
    mail_from = EXCLUDED.mail_from,
    from_address = EXCLUDED.from_address,
    subject = EXCLUDED.subject,
    size = EXCLUDED.size,
    recipients_count = EXCLUDED.recipients_count,
    status = EXCLUDED.status,
    received_at = EXCLUDED.received_at,
    updated_at = EXCLUDED.updated_at`);

const SAVE_RECIPIENTS_SQL = prepared(`
  INSERT INTO recipient_reports AS rr
    (message_id, recipient, status, attempts, last_reply, last_mx, next_attempt_at, bounce_class,
     status_code, updated_at, timeline)
  SELECT message_id, recipient, status, attempts, last_reply, last_mx, next_attempt_at, bounce_class,
         status_code, updated_at, timeline
  FROM jsonb_to_recordset($1::jsonb) AS r(
    message_id text, recipient text, status text, attempts int, last_reply text, last_mx text,
    next_attempt_at timestamptz, bounce_class text, status_code text, updated_at timestamptz,
    timeline jsonb)
  ON CONFLICT (message_id, recipient) DO UPDATE SET
    status = EXCLUDED.status,
    attempts = EXCLUDED.attempts,
    last_reply = EXCLUDED.last_reply,
    last_mx = EXCLUDED.last_mx,
    next_attempt_at = EXCLUDED.next_attempt_at,
    bounce_class = EXCLUDED.bounce_class,
    status_code = EXCLUDED.status_code,
    updated_at = EXCLUDED.updated_at,
    timeline = EXCLUDED.timeline`);

async function load(
  manager: EntityManager,
  messageIds: readonly string[],
): Promise<Map<string, MessageState>> {
  // One connection (the transaction's): the two reads go one after the other.
  const messages = await manager.query<MessageReportRow[]>(LOAD_MESSAGES_SQL, [messageIds]);
  const recipients = await manager.query<RecipientRow[]>(LOAD_RECIPIENTS_SQL, [messageIds]);
  const byMessage = new Map<string, Map<string, RecipientState>>();
  for (const row of recipients) {
    const rows = byMessage.get(row.message_id) ?? new Map<string, RecipientState>();
    byMessage.set(row.message_id, rows);
    rows.set(row.recipient, { ...recipientReportOf(row), updatedAt: row.updated_at.toISOString() });
  }
  const states = new Map<string, MessageState>();
  for (const row of messages) {
    states.set(row.message_id, {
      ...messageSummaryOf(row),
      recipients: byMessage.get(row.message_id) ?? new Map(),
    });
  }
  return states;
}

async function save(manager: EntityManager, states: readonly MessageState[]): Promise<void> {
  // Messages first: recipient rows reference them.
  await manager.query(SAVE_MESSAGES_SQL, [
    JSON.stringify(
      states.map((m) => ({
        message_id: m.id,
        account_id: m.accountId,
        mail_from: m.mailFrom,
        from_address: m.from,
        subject: m.subject,
        size: m.size,
        recipients_count: m.recipientsCount,
        status: m.status,
        received_at: m.receivedAt,
        updated_at: m.updatedAt,
      })),
    ),
  ]);
  const recipients = states.flatMap((m) =>
    [...m.recipients.values()].map((r) => ({
      message_id: m.id,
      recipient: r.recipient,
      status: r.status,
      attempts: r.attempts,
      last_reply: r.lastReply,
      last_mx: r.mx,
      next_attempt_at: r.nextAttemptAt,
      bounce_class: r.bounceClass,
      status_code: r.statusCode,
      updated_at: r.updatedAt,
      timeline: r.timeline,
    })),
  );
  if (recipients.length > 0) await manager.query(SAVE_RECIPIENTS_SQL, [JSON.stringify(recipients)]);
}

/**
 * Projection "delivery-report": message_reports and recipient_reports (migration
 * 1764380400000-delivery-reports). A batch costs four statements whatever its size: load the rows
 * of the messages it is about, fold its events into them in log order (evolveReport), write them
 * back.
 */
export class DeliveryReportProjector implements Projection<DeliveryReportEvent['type']> {
  readonly name = 'delivery-report';
  readonly eventTypes = DELIVERY_REPORT_EVENT_TYPES;

  async apply(event: DeliveryReportEvent, manager: EntityManager): Promise<void> {
    await this.applyBatch([event], manager);
  }

  async applyBatch(events: readonly DeliveryReportEvent[], manager: EntityManager): Promise<void> {
    const messageIds = [
      ...new Set(
        events.flatMap((e) => (e.messageId !== undefined && e.accountId !== null ? [e.messageId] : [])),
      ),
    ];
    if (messageIds.length === 0) return;
    const states = await load(manager, messageIds);
    for (const event of events) {
      if (event.messageId === undefined) continue;
      const next = evolveReport(states.get(event.messageId), event);
      if (next) states.set(event.messageId, next);
    }
    await save(manager, [...states.values()]);
  }

  async reset(manager: EntityManager): Promise<void> {
    await manager.query(`TRUNCATE recipient_reports, message_reports`);
  }
}
