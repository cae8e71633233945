import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The delivery stage's queue: one row per (message, recipient) that MessageQueued cleared, so a
 * redelivered MessageQueued never queues a recipient twice. Rows stay after their final outcome
 * (state delivered/bounced) for that reason and are purged after a retention period. A worker
 * owns a row while its lease runs; an expired lease (a crashed worker) lets another take it.
 */
export class DeliveryQueue1764380600000 implements MigrationInterface {
  name = 'DeliveryQueue1764380600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE delivery_recipients (
        message_id text NOT NULL,
        recipient text NOT NULL,
        account_id text NOT NULL,
        domain text NOT NULL,
        mail_from text NOT NULL,
        spool_key text NOT NULL,
        size bigint NOT NULL,
        smtp_utf8 boolean NOT NULL,
        eight_bit_mime boolean NOT NULL,
        received_at timestamptz NOT NULL,
        queued_event_id uuid NOT NULL,
        state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'bounced')),
        attempts int NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL,
        lease_owner text,
        lease_until timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (message_id, recipient)
      )`);
    await q.query(
      `CREATE INDEX delivery_recipients_due ON delivery_recipients (next_attempt_at) WHERE state = 'pending'`,
    );
    await q.query(
      `CREATE INDEX delivery_recipients_updated ON delivery_recipients (updated_at) WHERE state <> 'pending'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE delivery_recipients`);
  }
}
