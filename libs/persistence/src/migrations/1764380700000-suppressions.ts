import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Read model of the accounts' Bounce and Unsubscribe lists, built from SuppressionAdded and
 * SuppressionRemoved. `address_key` is the comparison form (suppressionKey in libs/domain);
 * `address` keeps the address as it was first listed.
 */
export class Suppressions1764380700000 implements MigrationInterface {
  name = 'Suppressions1764380700000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE suppressions (
        account_id text NOT NULL,
        list text NOT NULL CHECK (list IN ('bounce', 'unsubscribe')),
        address_key text NOT NULL,
        address text NOT NULL,
        reason text NOT NULL,
        source text NOT NULL,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (account_id, list, address_key)
      )`);
    await q.query(`CREATE INDEX suppressions_account_created ON suppressions (account_id, list, created_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE suppressions`);
  }
}
