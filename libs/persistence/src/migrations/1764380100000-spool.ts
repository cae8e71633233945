import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Chunked message bodies for the Postgres spool adapter (ingress and workers on different machines). */
export class Spool1764380100000 implements MigrationInterface {
  name = 'Spool1764380100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE spool_bodies (
        key text PRIMARY KEY,
        size bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX spool_bodies_created_at ON spool_bodies (created_at)`);
    await q.query(`
      CREATE TABLE spool_chunks (
        key text NOT NULL REFERENCES spool_bodies (key) ON DELETE CASCADE,
        seq int NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (key, seq)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE spool_chunks`);
    await q.query(`DROP TABLE spool_bodies`);
  }
}
