import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Read model of what each account used per month (projection "quota", built from MessageQueued):
 * what `GET /v1/accounts/:id/usage` shows. It can be emptied and rebuilt from the log at any time;
 * the policy stage decides from its own policy_usage, never from this table.
 * `quota_usage_events` holds the id of every MessageQueued counted: on Kafka the outbox relay may
 * publish an event twice (at another offset), and the copy must not count again. `period` is
 * kept so that the ids of long-past months can be pruned; a copy follows its original closely.
 */
export class QuotaUsage1764381100000 implements MigrationInterface {
  name = 'QuotaUsage1764381100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE quota_usage (
        account_id text NOT NULL,
        period text NOT NULL,
        messages bigint NOT NULL DEFAULT 0,
        bytes bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (account_id, period)
      )`);
    await q.query(`
      CREATE TABLE quota_usage_events (
        event_id uuid PRIMARY KEY,
        period text NOT NULL
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE quota_usage_events`);
    await q.query(`DROP TABLE quota_usage`);
  }
}
