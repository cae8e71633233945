import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A queued recipient may carry its own return path. Sender notifications go out with the null
 * return path (`MAIL FROM:<>`, RFC 3464 2.1) rather than the VERP address, so that nothing can
 * bounce back about them; null means the usual VERP address.
 */
export class DeliveryReturnPath1764380800000 implements MigrationInterface {
  name = 'DeliveryReturnPath1764380800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE delivery_recipients ADD COLUMN return_path text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE delivery_recipients DROP COLUMN return_path`);
  }
}
