import type { MigrationInterface, QueryRunner } from 'typeorm';

const MESSAGE_STATUSES = [
  'queued',
  'deferred',
  'delivered',
  'bounced',
  'partially-delivered',
  'suppressed',
  'held',
  'denied',
];
const RECIPIENT_STATUSES = [
  'received',
  'queued',
  'deferred',
  'delivered',
  'bounced',
  'suppressed',
  'quota-exceeded',
  'denied',
];

const oneOf = (values: readonly string[]): string => values.map((v) => `'${v}'`).join(', ');

/**
 * The delivery report read model (projection "delivery-report"): one row per message with its
 * aggregate status, one per recipient with its attempts and timeline. Written only by
 * DeliveryReportProjector; what any column may hold is decided there. Columns the first event seen
 * for a message may not carry (a projection that started after the MessageReceived) are nullable.
 * The status lists are copied here, not imported: a migration must not change when the code does.
 */
export class DeliveryReports1764380400000 implements MigrationInterface {
  name = 'DeliveryReports1764380400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE message_reports (
        message_id text PRIMARY KEY,
        account_id text NOT NULL,
        mail_from text,
        from_address text,
        subject text,
        size bigint,
        recipients_count int NOT NULL DEFAULT 0,
        status text NOT NULL CHECK (status IN (${oneOf(MESSAGE_STATUSES)})),
        received_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
      )`);
    // GET /v1/accounts/:id/messages?since=&status=, newest first with a (received_at, message_id) keyset.
    await q.query(`
      CREATE INDEX message_reports_account_received
        ON message_reports (account_id, received_at DESC, message_id DESC)`);
    await q.query(`
      CREATE INDEX message_reports_account_status_received
        ON message_reports (account_id, status, received_at DESC, message_id DESC)`);
    await q.query(`
      CREATE TABLE recipient_reports (
        message_id text NOT NULL REFERENCES message_reports (message_id) ON DELETE CASCADE,
        recipient text NOT NULL,
        status text NOT NULL CHECK (status IN (${oneOf(RECIPIENT_STATUSES)})),
        attempts int NOT NULL DEFAULT 0,
        last_reply text,
        last_mx text,
        next_attempt_at timestamptz,
        bounce_class text,
        status_code text,
        updated_at timestamptz NOT NULL,
        timeline jsonb NOT NULL DEFAULT '[]',
        PRIMARY KEY (message_id, recipient)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE recipient_reports`);
    await q.query(`DROP TABLE message_reports`);
  }
}
