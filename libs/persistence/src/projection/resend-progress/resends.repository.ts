import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';

export const RESEND_STATUSES = ['requested', 'running', 'done'] as const;

/**
 * requested: recorded, the worker has not started it yet; running: the worker is resubmitting, or
 * waits for the outcome of what it resubmitted; done: every resubmitted recipient has an outcome.
 */
export type ResendStatus = (typeof RESEND_STATUSES)[number];

/** A resend and its progress, as GET /v1/resends/:id shows it. */
export interface ResendProgress {
  readonly id: string;
  readonly accountId: string;
  readonly since: string;
  readonly requestedAt: string;
  readonly status: ResendStatus;
  /** Recipients this resend hands back to the policy stage (known once it is running). */
  readonly total: number;
  /** Of those, handed back so far (MessageResubmitted written). */
  readonly resubmitted: number;
  readonly delivered: number;
  /** Held back again by the policy stage (QuotaExceeded with this resend's id). */
  readonly overQuotaAgain: number;
  /** Bounced, or suppressed by the policy stage. */
  readonly failed: number;
}

export interface NewResend {
  readonly id: string;
  readonly accountId: string;
  readonly since: Date;
  readonly requestedAt: Date;
}

interface ResendRow {
  id: string;
  account_id: string;
  since: Date;
  requested_at: Date;
  status: ResendStatus;
  total: number;
  resubmitted: number;
  delivered: number;
  over_quota_again: number;
  failed: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Records a resend (status requested) in the caller's transaction; a resend already recorded is
 * left as it is, so the worker may call this for a ResendRequested whose row it does not find.
 */
export async function recordResend(manager: EntityManager, resend: NewResend): Promise<void> {
  await manager.query(
    `INSERT INTO resends (id, account_id, since, requested_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO NOTHING`,
    [resend.id, resend.accountId, resend.since.toISOString(), resend.requestedAt.toISOString()],
  );
}

const toProgress = (row: ResendRow): ResendProgress => ({
  id: row.id,
  accountId: row.account_id,
  since: row.since.toISOString(),
  requestedAt: row.requested_at.toISOString(),
  status: row.status,
  total: row.total,
  resubmitted: row.resubmitted,
  delivered: row.delivered,
  overQuotaAgain: row.over_quota_again,
  failed: row.failed,
});

/** The resends table: written by the worker's resend reactor and the resend-progress projection. */
@Injectable()
export class ResendsRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /** Undefined when no resend has the id (dry runs are never recorded here). */
  async get(id: string): Promise<ResendProgress | undefined> {
    if (!UUID.test(id)) return undefined;
    const rows = await this.dataSource.query<ResendRow[]>(
      `SELECT id::text AS id, account_id, since, requested_at, status, total, resubmitted, delivered,
              over_quota_again, failed
       FROM resends WHERE id = $1`,
      [id],
    );
    return rows[0] && toProgress(rows[0]);
  }
}
