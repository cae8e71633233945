import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Bookkeeping of the projectors (libs/persistence projection-runner.ts). `projection_positions`
 * holds, per projection and log partition, the offset of the last event applied; it is written in
 * the same transaction as the read model's rows, which makes a redelivered event a no-op.
 * `projection_generations` counts rebuilds: each generation consumes the log under a consumer
 * group of its own, so a rebuild replays the log from its start.
 */
export class ProjectionPositions1764380500000 implements MigrationInterface {
  name = 'ProjectionPositions1764380500000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE projection_positions (
        projection text NOT NULL,
        partition int NOT NULL,
        log_offset text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (projection, partition)
      )`);
    await q.query(`
      CREATE TABLE projection_generations (
        projection text PRIMARY KEY,
        generation int NOT NULL DEFAULT 0,
        rebuilt_at timestamptz
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE projection_generations`);
    await q.query(`DROP TABLE projection_positions`);
  }
}
