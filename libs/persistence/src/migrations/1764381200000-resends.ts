import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Resends of held-back mail. `resends` is one row per resend a support agent asked for (not for
 * dry runs): the worker's resend reactor writes `total` and `resubmitted`, the resend-progress
 * projection the outcomes (`delivered`, `over_quota_again`, `failed`) and `done`.
 *
 * `resubmissions` is one row per (QuotaExceeded, recipient) a resend handed back to the policy
 * stage, inserted in the transaction that writes its MessageResubmitted to the outbox: its key is
 * what keeps a second resend, a redelivered ResendRequested or a resumed one from resubmitting a
 * recipient twice. `outcome` belongs to the resend-progress projection (null until the policy
 * stage decided; a rebuild clears it): it says which resend an outcome of (message, recipient)
 * counts for, and that it was counted once.
 */
export class Resends1764381200000 implements MigrationInterface {
  name = 'Resends1764381200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE resends (
        id uuid PRIMARY KEY,
        account_id text NOT NULL,
        since timestamptz NOT NULL,
        requested_at timestamptz NOT NULL,
        dry_run boolean NOT NULL DEFAULT false,
        status text NOT NULL DEFAULT 'requested' CHECK (status IN ('requested', 'running', 'done')),
        total int NOT NULL DEFAULT 0,
        resubmitted int NOT NULL DEFAULT 0,
        delivered int NOT NULL DEFAULT 0,
        over_quota_again int NOT NULL DEFAULT 0,
        failed int NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX resends_account ON resends (account_id, requested_at)`);
    await q.query(`
      CREATE TABLE resubmissions (
        quota_exceeded_event_id uuid NOT NULL,
        recipient text NOT NULL,
        message_id text NOT NULL,
        resend_id uuid NOT NULL REFERENCES resends,
        outcome text CHECK (outcome IN ('queued', 'delivered', 'bounced', 'suppressed', 'over-quota')),
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (quota_exceeded_event_id, recipient)
      )`);
    await q.query(`CREATE INDEX resubmissions_message ON resubmissions (message_id, recipient)`);
    await q.query(`CREATE INDEX resubmissions_resend ON resubmissions (resend_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE resubmissions`);
    await q.query(`DROP TABLE resends`);
  }
}
