import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The notifier's memory. `notification_messages` holds one row per notification mail the relay
 * sends (its own message id, where it went, its spooled body) and `queued_at` once it is on the
 * delivery queue: a row without one after a crash is queued again. `notifications` holds one row
 * per (message, recipient, reason) already notified, inserted in the same transaction as the
 * mail's row and its NotificationSent, so a redelivered event never notifies twice. The lookup by
 * notification_message_id tells the notifier that a message is itself a notification.
 */
export class Notifications1764380900000 implements MigrationInterface {
  name = 'Notifications1764380900000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE notification_messages (
        notification_message_id text PRIMARY KEY,
        account_id text NOT NULL,
        reason text NOT NULL,
        notified text NOT NULL,
        spool_key text NOT NULL,
        size bigint NOT NULL,
        smtp_utf8 boolean NOT NULL,
        eight_bit_mime boolean NOT NULL,
        event_id uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        queued_at timestamptz
      )`);
    await q.query(
      `CREATE INDEX notification_messages_unqueued ON notification_messages (created_at) WHERE queued_at IS NULL`,
    );
    await q.query(`
      CREATE TABLE notifications (
        message_id text NOT NULL,
        recipient text NOT NULL,
        reason text NOT NULL CHECK (reason IN
          ('suppressed-bounce', 'suppressed-unsubscribe', 'relay-denied', 'bounced', 'quota-exceeded')),
        notification_message_id text NOT NULL REFERENCES notification_messages ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (message_id, recipient, reason)
      )`);
    await q.query(`CREATE INDEX notifications_notification ON notifications (notification_message_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE notifications`);
    await q.query(`DROP TABLE notification_messages`);
  }
}
