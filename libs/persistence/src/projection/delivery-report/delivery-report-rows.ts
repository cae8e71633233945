import type {
  MessageStatus,
  MessageSummary,
  RecipientReport,
  RecipientStatus,
  TimelineEntry,
} from './delivery-report.js';

/**
 * The rows of message_reports and recipient_reports as DeliveryReportProjector (to fold events
 * into) and DeliveryReportsRepository (to answer with) read them, and what they mean.
 */

/** size is a bigint: read as text, made a number by messageSummaryOf. */
export const MESSAGE_REPORT_COLUMNS = `
  message_id, account_id, mail_from, from_address, subject, size::text AS size, recipients_count,
  status, received_at, updated_at`;

export interface MessageReportRow {
  message_id: string;
  account_id: string;
  mail_from: string | null;
  from_address: string | null;
  subject: string | null;
  size: string | null;
  recipients_count: number;
  status: MessageStatus;
  received_at: Date;
  updated_at: Date;
}

export const RECIPIENT_REPORT_COLUMNS = `
  recipient, status, attempts, last_reply, last_mx, next_attempt_at, bounce_class, status_code, timeline`;

export interface RecipientReportRow {
  recipient: string;
  status: RecipientStatus;
  attempts: number;
  last_reply: string | null;
  last_mx: string | null;
  next_attempt_at: Date | null;
  bounce_class: string | null;
  status_code: string | null;
  timeline: TimelineEntry[];
}

export function messageSummaryOf(row: MessageReportRow): MessageSummary {
  return {
    id: row.message_id,
    accountId: row.account_id,
    mailFrom: row.mail_from,
    from: row.from_address,
    subject: row.subject,
    size: row.size === null ? null : Number(row.size),
    recipientsCount: row.recipients_count,
    status: row.status,
    receivedAt: row.received_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

export function recipientReportOf(row: RecipientReportRow): RecipientReport {
  return {
    recipient: row.recipient,
    status: row.status,
    attempts: row.attempts,
    lastReply: row.last_reply,
    mx: row.last_mx,
    nextAttemptAt: row.next_attempt_at?.toISOString() ?? null,
    bounceClass: row.bounce_class,
    statusCode: row.status_code,
    timeline: row.timeline,
  };
}
