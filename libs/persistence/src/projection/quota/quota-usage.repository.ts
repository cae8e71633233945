import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { Limits, Usage } from '@relay/domain';

/** An account's month as the quota read model has it, against the account's current plan. */
export interface QuotaUsageReport {
  /** Calendar month (UTC), YYYY-MM. */
  readonly period: string;
  /** Recipients queued in the month, and the bytes they count (the message's size each). */
  readonly messages: number;
  readonly bytes: number;
  /** The account's limits now (null: unlimited), not those in force when the mail was queued. */
  readonly limits: Limits;
  readonly overageAllowed: boolean;
  /** What was used past each limit; 0 for an unlimited one. */
  readonly overage: Usage;
}

/** max(0, used - limit) for each limit; 0 when unlimited. */
export function overageOf(usage: Usage, limits: Limits): Usage {
  const past = (used: number, limit: number | null): number =>
    limit === null ? 0 : Math.max(0, used - limit);
  return { messages: past(usage.messages, limits.messages), bytes: past(usage.bytes, limits.bytes) };
}

interface UsageRow {
  monthly_message_limit: number | null;
  monthly_byte_limit: string | null;
  overage_allowed: boolean;
  /** Null when the month has no row: nothing queued yet. */
  messages: string | null;
  bytes: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// bigint as text: pg would hand a bigint over as a string anyway, and the sums stay far below 2^53.
const USAGE_SQL = `
  SELECT a.monthly_message_limit, a.monthly_byte_limit::text AS monthly_byte_limit, a.overage_allowed,
         u.messages::text AS messages, u.bytes::text AS bytes
  FROM accounts a
  LEFT JOIN quota_usage u ON u.account_id = a.id::text AND u.period = $2
  WHERE a.id = $1::uuid`;

/** Reads the quota read model (projection "quota"): it follows the log, so it may lag a moment. */
@Injectable()
export class QuotaUsageRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /** The account's usage of `period` (YYYY-MM) with its current plan; null when no account has `accountId`. */
  async usage(accountId: string, period: string): Promise<QuotaUsageReport | null> {
    if (!UUID.test(accountId)) return null;
    const rows: UsageRow[] = await this.dataSource.query(USAGE_SQL, [accountId, period]);
    const row = rows[0];
    if (!row) return null;
    const used: Usage = { messages: Number(row.messages ?? 0), bytes: Number(row.bytes ?? 0) };
    const limits: Limits = {
      messages: row.monthly_message_limit,
      bytes: row.monthly_byte_limit === null ? null : Number(row.monthly_byte_limit),
    };
    return {
      period,
      ...used,
      limits,
      overageAllowed: row.overage_allowed,
      overage: overageOf(used, limits),
    };
  }
}
