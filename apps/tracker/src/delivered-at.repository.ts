import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/**
 * When a message reached a recipient's server, from the delivery report read model (the latest
 * Delivered in the recipient's timeline: a resend delivers again). One primary-key lookup; the
 * address is compared without case, as the token may spell it otherwise than the envelope.
 */
const DELIVERED_AT = `
  SELECT max((entry->>'at')::timestamptz) AS delivered_at
  FROM recipient_reports, jsonb_array_elements(timeline) AS entry
  WHERE message_id = $1 AND lower(recipient) = lower($2) AND entry->>'type' = 'Delivered'`;

@Injectable()
export class DeliveredAtRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /** Undefined while the report has no Delivered for the recipient (not yet projected, or none). */
  async deliveredAt(messageId: string, recipient: string): Promise<Date | undefined> {
    const rows: { delivered_at: Date | null }[] = await this.dataSource.query(DELIVERED_AT, [
      messageId,
      recipient,
    ]);
    return rows[0]?.delivered_at ?? undefined;
  }
}
