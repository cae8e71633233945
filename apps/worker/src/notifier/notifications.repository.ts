import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { NotificationReason, NotificationSent } from '@relay/domain';
import { appendToOutbox } from '@relay/persistence';
import { deliveryKey, type OriginalDelivery } from './sender-notification.decide.js';

/** A notification mail as the notifier keeps it until it is on the delivery queue. */
export interface NotificationMail {
  readonly notificationMessageId: string;
  readonly accountId: string;
  readonly reason: NotificationReason;
  readonly notified: string;
  readonly spoolKey: string;
  readonly size: number;
  readonly smtpUtf8: boolean;
  readonly eightBitMime: boolean;
  /** The NotificationSent that records it; the delivery queue row names it as its cause. */
  readonly eventId: string;
  readonly createdAt: Date;
}

/** A notification mail to record, with the (message, recipient, reason) keys it answers. */
export interface NewNotification {
  readonly mail: Omit<NotificationMail, 'createdAt' | 'eventId'>;
  /** The original message. */
  readonly messageId: string;
  readonly recipients: readonly string[];
  readonly event: NotificationSent;
}

interface MailRow {
  notification_message_id: string;
  account_id: string;
  reason: NotificationReason;
  notified: string;
  spool_key: string;
  size: string;
  smtp_utf8: boolean;
  eight_bit_mime: boolean;
  event_id: string;
  created_at: Date;
}

/** Thrown inside the transaction to roll it back when another handler notified a key first. */
class AlreadyNotified extends Error {}

/**
 * SQL of the notifier (tables notifications and notification_messages; migration
 * 1764380900000). It also reads the delivery queue (delivery_recipients) for what a Bounced does
 * not carry: the bounced message's envelope sender and spooled body.
 */
@Injectable()
export class NotificationsRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /** Those of `messageIds` that are notifications the relay sent. */
  async notificationIds(messageIds: readonly string[]): Promise<Set<string>> {
    if (messageIds.length === 0) return new Set();
    const rows: { id: string }[] = await this.dataSource.query(
      `SELECT notification_message_id AS id FROM notification_messages
       WHERE notification_message_id = ANY($1::text[])`,
      [[...new Set(messageIds)]],
    );
    return new Set(rows.map((r) => r.id));
  }

  /** What the delivery queue holds of each (message, recipient), by deliveryKey. */
  async originals(
    keys: readonly { messageId: string; recipient: string }[],
  ): Promise<Map<string, OriginalDelivery>> {
    if (keys.length === 0) return new Map();
    const rows: {
      message_id: string;
      recipient: string;
      mail_from: string;
      spool_key: string;
      received_at: Date;
    }[] = await this.dataSource.query(
      `SELECT d.message_id, d.recipient, d.mail_from, d.spool_key, d.received_at
         FROM delivery_recipients d
         JOIN jsonb_to_recordset($1::jsonb) AS k("messageId" text, recipient text)
           ON d.message_id = k."messageId" AND d.recipient = k.recipient`,
      [JSON.stringify(keys)],
    );
    return new Map(
      rows.map((r) => [
        deliveryKey(r.message_id, r.recipient),
        { mailFrom: r.mail_from, spoolKey: r.spool_key, receivedAt: r.received_at },
      ]),
    );
  }

  /** Those of `recipients` of the message already notified for `reason`. */
  async notifiedRecipients(
    messageId: string,
    reason: NotificationReason,
    recipients: readonly string[],
  ): Promise<Set<string>> {
    const rows: { recipient: string }[] = await this.dataSource.query(
      `SELECT recipient FROM notifications WHERE message_id = $1 AND reason = $2 AND recipient = ANY($3::text[])`,
      [messageId, reason, recipients],
    );
    return new Set(rows.map((r) => r.recipient));
  }

  /**
   * Records a notification mail, the keys it answers and its NotificationSent (through the
   * outbox) in one transaction. False, with nothing written, when any key was notified already:
   * another handler of the same event won, and this mail must not go out.
   */
  async record(notification: NewNotification): Promise<boolean> {
    const { mail } = notification;
    try {
      await this.dataSource.transaction(async (manager) => {
        await manager.query(
          `INSERT INTO notification_messages (notification_message_id, account_id, reason, notified, spool_key,
             size, smtp_utf8, eight_bit_mime, event_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
          [
            mail.notificationMessageId,
            mail.accountId,
            mail.reason,
            mail.notified,
            mail.spoolKey,
            mail.size,
            mail.smtpUtf8,
            mail.eightBitMime,
            notification.event.id,
          ],
        );
        const inserted: { recipient: string }[] = await manager.query(
          `INSERT INTO notifications (message_id, recipient, reason, notification_message_id)
           SELECT $1, r, $2, $3 FROM unnest($4::text[]) AS r
           ON CONFLICT (message_id, recipient, reason) DO NOTHING
           RETURNING recipient`,
          [notification.messageId, mail.reason, mail.notificationMessageId, notification.recipients],
        );
        if (inserted.length !== new Set(notification.recipients).size) throw new AlreadyNotified();
        await appendToOutbox(manager, [notification.event]);
      });
      return true;
    } catch (error) {
      if (error instanceof AlreadyNotified) return false;
      throw error;
    }
  }

  /** Marks mails as being on the delivery queue. */
  async markQueued(notificationMessageIds: readonly string[]): Promise<void> {
    if (notificationMessageIds.length === 0) return;
    await this.dataSource.query(
      `UPDATE notification_messages SET queued_at = now()
       WHERE notification_message_id = ANY($1::text[]) AND queued_at IS NULL`,
      [notificationMessageIds],
    );
  }

  /** Recorded mails not on the delivery queue for `olderThanMs`: their handler died in between. */
  async unqueued(olderThanMs: number, limit: number): Promise<NotificationMail[]> {
    const rows: MailRow[] = await this.dataSource.query(
      `SELECT notification_message_id, account_id, reason, notified, spool_key, size, smtp_utf8,
         eight_bit_mime, event_id, created_at
       FROM notification_messages
       WHERE queued_at IS NULL AND created_at < now() - $1 * interval '1 millisecond'
       ORDER BY created_at LIMIT $2`,
      [olderThanMs, limit],
    );
    return rows.map((r) => ({
      notificationMessageId: r.notification_message_id,
      accountId: r.account_id,
      reason: r.reason,
      notified: r.notified,
      spoolKey: r.spool_key,
      size: Number(r.size),
      smtpUtf8: r.smtp_utf8,
      eightBitMime: r.eight_bit_mime,
      eventId: r.event_id,
      createdAt: r.created_at,
    }));
  }
}
