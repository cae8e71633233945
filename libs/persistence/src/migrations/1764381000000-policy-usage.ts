import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The policy stage's own state: what each account used per month, as its quota decisions counted
 * it. Written in the same transaction as the decisions and the stage's log position, so usage is
 * exact across redeliveries and restarts. (The usage shown to support agents is a separate read
 * model, quota_usage, that can be rebuilt from the log without touching decisions in flight.)
 */
export class PolicyUsage1764381000000 implements MigrationInterface {
  name = 'PolicyUsage1764381000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE policy_usage (
        account_id text NOT NULL,
        period text NOT NULL,
        messages bigint NOT NULL DEFAULT 0,
        bytes bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (account_id, period)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE policy_usage`);
  }
}
