import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The accounts' DKIM keys: `[{ type, selector, privateKey, dnsRecord: { name, type, value },
 * createdAt }]`, RSA first, private keys encrypted (libs/mime encryptPrivateKey with
 * DKIM_KEY_SECRET). A DKIM domain and selector always come with their keys: settings saved
 * before keys existed could never sign, and are cleared rather than shown as if they could.
 */
export class AccountDkimKeys1764381300000 implements MigrationInterface {
  name = 'AccountDkimKeys1764381300000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE accounts ADD COLUMN dkim_keys jsonb NOT NULL DEFAULT '[]'`);
    await q.query(
      `UPDATE accounts SET dkim_domain = NULL, dkim_selector = NULL WHERE dkim_domain IS NOT NULL`,
    );
    await q.query(`
      ALTER TABLE accounts
        ADD CONSTRAINT accounts_dkim_keys_array CHECK (jsonb_typeof(dkim_keys) = 'array'),
        ADD CONSTRAINT accounts_dkim_keys_match CHECK ((dkim_domain IS NULL) = (dkim_keys = '[]'::jsonb))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE accounts
        DROP CONSTRAINT accounts_dkim_keys_match,
        DROP CONSTRAINT accounts_dkim_keys_array,
        DROP COLUMN dkim_keys`);
  }
}
