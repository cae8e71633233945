import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The transactional outbox: events written in the same transaction as the row change they
 * describe, then moved to the event log by OutboxRelay (outbox/outbox-relay.ts) and deleted.
 */
export class Outbox1764380300000 implements MigrationInterface {
  name = 'Outbox1764380300000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE outbox (
        id bigserial PRIMARY KEY,
        event jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE outbox`);
  }
}
