import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The Postgres event log. `position` alone is not a safe cursor: sequence values are taken at
 * insert but become visible at commit, so a reader that trusts position order can skip an event
 * whose transaction commits late. Readers therefore order by (tx_id, position) and only read rows
 * whose transaction id is below the oldest transaction still running
 * (pg_snapshot_xmin(pg_current_snapshot())); nothing can commit into that prefix any more.
 */
export class EventLog1764380000000 implements MigrationInterface {
  name = 'EventLog1764380000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE event_log (
        position bigserial PRIMARY KEY,
        tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
        event_id uuid NOT NULL,
        type text NOT NULL,
        account_id text,
        message_id text,
        occurred_at timestamptz NOT NULL,
        payload jsonb NOT NULL,
        CONSTRAINT event_log_event_id_unique UNIQUE (event_id)
      )`);
    await q.query(`CREATE INDEX event_log_tx_position ON event_log (tx_id, position)`);
    await q.query(`CREATE INDEX event_log_occurred_at ON event_log (occurred_at)`);
    await q.query(`CREATE INDEX event_log_account_occurred_at ON event_log (account_id, occurred_at)`);
    await q.query(`
      CREATE TABLE event_log_consumer_positions (
        group_name text PRIMARY KEY,
        tx_id xid8 NOT NULL,
        position bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE event_log_consumer_positions`);
    await q.query(`DROP TABLE event_log`);
  }
}
