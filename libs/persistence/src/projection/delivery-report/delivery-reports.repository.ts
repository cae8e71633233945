import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type {
  MessageReport,
  MessageStatus,
  MessageSummary,
  RecipientReport,
  RecipientStatus,
  TimelineEntry,
} from './delivery-report.js';

export interface MessagePage {
  readonly items: readonly MessageSummary[];
  /** Pass as `cursor` for the next page; null on the last page. */
  readonly nextCursor: string | null;
}

export interface ListMessagesOptions {
  readonly accountId: string;
  readonly status?: MessageStatus;
  /** Only messages received at or after this time. */
  readonly since?: Date;
  readonly limit: number;
  /** The nextCursor of the previous page (see isMessageCursor). */
  readonly cursor?: string;
}

interface MessageRow {
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
  /** received_at to the microsecond, for the keyset cursor (a Date keeps only milliseconds). */
  cursor_at: string;
}

interface RecipientRow {
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

const MESSAGE_COLUMNS = `
  message_id, account_id, mail_from, from_address, subject, size::text AS size, recipients_count,
  status, received_at, updated_at,
  to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at`;

interface Cursor {
  readonly receivedAt: string;
  readonly messageId: string;
}

const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

function encodeCursor(row: MessageRow): string {
  return Buffer.from(JSON.stringify([row.cursor_at, row.message_id])).toString('base64url');
}

function decodeCursor(cursor: string): Cursor | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!Array.isArray(value) || value.length !== 2) return undefined;
    const [receivedAt, messageId] = value as unknown[];
    if (typeof receivedAt !== 'string' || !CURSOR_TIME.test(receivedAt)) return undefined;
    if (typeof messageId !== 'string' || messageId === '') return undefined;
    return { receivedAt, messageId };
  } catch {
    return undefined;
  }
}

/** True for a nextCursor this repository handed out (the admin API validates ?cursor= with it). */
export function isMessageCursor(cursor: string): boolean {
  return decodeCursor(cursor) !== undefined;
}

function toSummary(row: MessageRow): MessageSummary {
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

function toRecipient(row: RecipientRow): RecipientReport {
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

/** Reads the delivery report read model that DeliveryReportProjector writes. */
@Injectable()
export class DeliveryReportsRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /** The message with every recipient (by address), or undefined when the report has no such message. */
  async get(messageId: string): Promise<MessageReport | undefined> {
    const [message]: MessageRow[] = await this.dataSource.query(
      `SELECT ${MESSAGE_COLUMNS} FROM message_reports WHERE message_id = $1`,
      [messageId],
    );
    if (!message) return undefined;
    const recipients: RecipientRow[] = await this.dataSource.query(
      `SELECT recipient, status, attempts, last_reply, last_mx, next_attempt_at, bounce_class,
              status_code, timeline
       FROM recipient_reports WHERE message_id = $1 ORDER BY recipient`,
      [messageId],
    );
    return { ...toSummary(message), recipients: recipients.map(toRecipient) };
  }

  /**
   * An account's messages, newest first, a page at a time: keyset on (received_at, message_id),
   * so a page never repeats or skips a message when new ones arrive in between. A cursor that
   * isMessageCursor refuses gives an empty page.
   */
  async list(options: ListMessagesOptions): Promise<MessagePage> {
    const cursor = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    if (options.cursor !== undefined && cursor === undefined) return { items: [], nextCursor: null };
    const rows: MessageRow[] = await this.dataSource.query(
      `SELECT ${MESSAGE_COLUMNS} FROM message_reports
       WHERE account_id = $1
         AND ($2::text IS NULL OR status = $2::text)
         AND ($3::timestamptz IS NULL OR received_at >= $3::timestamptz)
         AND ($4::timestamptz IS NULL OR (received_at, message_id) < ($4::timestamptz, $5::text))
       ORDER BY received_at DESC, message_id DESC
       LIMIT $6`,
      [
        options.accountId,
        options.status ?? null,
        options.since ?? null,
        cursor?.receivedAt ?? null,
        cursor?.messageId ?? null,
        options.limit + 1,
      ],
    );
    const page = rows.slice(0, options.limit);
    const last = page.at(-1);
    return {
      items: page.map(toSummary),
      nextCursor: rows.length > options.limit && last ? encodeCursor(last) : null,
    };
  }
}
