import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { cursorTimeSql, decodeKeysetCursor, encodeKeysetCursor } from '../keyset-cursor.js';
import type { MessageReport, MessageStatus, MessageSummary } from './delivery-report.js';
import {
  MESSAGE_REPORT_COLUMNS,
  messageSummaryOf,
  RECIPIENT_REPORT_COLUMNS,
  recipientReportOf,
  type MessageReportRow,
  type RecipientReportRow,
} from './delivery-report-rows.js';

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

interface MessageRow extends MessageReportRow {
  /** received_at to the microsecond, for the keyset cursor (a Date keeps only milliseconds). */
  cursor_at: string;
}

const MESSAGE_COLUMNS = `${MESSAGE_REPORT_COLUMNS}, ${cursorTimeSql('received_at')} AS cursor_at`;

interface Cursor {
  readonly receivedAt: string;
  readonly messageId: string;
}

function encodeCursor(row: MessageRow): string {
  return encodeKeysetCursor(row.cursor_at, row.message_id);
}

function decodeCursor(cursor: string): Cursor | undefined {
  const decoded = decodeKeysetCursor(cursor, 1);
  const [messageId] = decoded?.keys ?? [];
  if (!decoded || typeof messageId !== 'string' || messageId === '') return undefined;
  return { receivedAt: decoded.time, messageId };
}

/** True for a nextCursor this repository handed out (the admin API validates ?cursor= with it). */
export function isMessageCursor(cursor: string): boolean {
  return decodeCursor(cursor) !== undefined;
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
    const recipients: RecipientReportRow[] = await this.dataSource.query(
      `SELECT ${RECIPIENT_REPORT_COLUMNS} FROM recipient_reports WHERE message_id = $1 ORDER BY recipient`,
      [messageId],
    );
    return { ...messageSummaryOf(message), recipients: recipients.map(recipientReportOf) };
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
      items: page.map(messageSummaryOf),
      nextCursor: rows.length > options.limit && last ? encodeCursor(last) : null,
    };
  }
}
