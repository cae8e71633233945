import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Sending accounts. `allowed_ips` is cidr[] so the IP allow-list match runs in SQL
 * (`$ip::inet <<= ANY(allowed_ips)`, longest prefix first). `allowed_from` holds addresses,
 * `@domain` entries or `*` (libs/domain sender-authorisation.ts). Null limits mean unlimited.
 */
export class Accounts1764380200000 implements MigrationInterface {
  name = 'Accounts1764380200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE accounts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL,
        username text NOT NULL,
        password_hash text NOT NULL,
        allowed_ips cidr[] NOT NULL DEFAULT '{}',
        allowed_from text[] NOT NULL,
        monthly_message_limit int CHECK (monthly_message_limit >= 0),
        monthly_byte_limit bigint CHECK (monthly_byte_limit >= 0),
        overage_allowed boolean NOT NULL DEFAULT false,
        wrap_width int NOT NULL DEFAULT 76 CHECK (wrap_width >= 0),
        tracking_opens boolean NOT NULL DEFAULT false,
        tracking_clicks boolean NOT NULL DEFAULT false,
        track_url_text_links boolean NOT NULL DEFAULT false,
        list_unsubscribe boolean NOT NULL DEFAULT true,
        tracking_domain text,
        bounce_notifications boolean NOT NULL DEFAULT false,
        dkim_domain text,
        dkim_selector text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT accounts_username_unique UNIQUE (username),
        CONSTRAINT accounts_allowed_from_not_empty CHECK (cardinality(allowed_from) > 0),
        CONSTRAINT accounts_dkim_complete CHECK ((dkim_domain IS NULL) = (dkim_selector IS NULL))
      )`);
    // Keyset pagination of the admin API's list, oldest first.
    await q.query(`CREATE INDEX accounts_created_at_id ON accounts (created_at, id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE accounts`);
  }
}
