import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { createEvent } from '@relay/domain';
import {
  appendToOutbox,
  findHeldMail,
  recordResend,
  resubmissionEventId,
  type HeldMail,
  type HeldMailLog,
  type HeldMailQuery,
  type NewResend,
  type ResendStatus,
} from '@relay/persistence';

/** A resend being carried out: its row's key and the ResendRequested that asked for it. */
export interface ResendInProgress extends NewResend {
  /** The ResendRequested's id: the causationId of each MessageResubmitted. */
  readonly requestedEventId: string;
}

export interface Resubmitted {
  /** Handed back to the policy stage by this call, in the QuotaExceeded's order. */
  readonly recipients: readonly string[];
  /** The MessageResubmitted written for them; undefined when there were none. */
  readonly eventId: string | undefined;
}

/** Class id of the per-account resend lock (two-int advisory key space; 7_251_002 is the log's). */
const RESEND_LOCK_CLASS = 7_251_004;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The resend reactor's SQL: the resends row it keeps up to date and the resubmissions whose key
 * (QuotaExceeded, recipient) lets a recipient be handed back once whatever resend asks.
 */
@Injectable()
export class ResubmissionsRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /**
   * Runs `work` holding the account's resend lock (a session advisory lock on a connection of its
   * own, so a crash releases it): the resends of one account run one after the other, in any
   * process, and each sees what the previous one resubmitted when it looks for held mail.
   */
  async withAccountLock<T>(accountId: string, work: () => Promise<T>): Promise<T> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.query(`SELECT pg_advisory_lock($1, hashtext($2))`, [RESEND_LOCK_CLASS, accountId]);
      try {
        return await work();
      } finally {
        await runner.query(`SELECT pg_advisory_unlock($1, hashtext($2))`, [RESEND_LOCK_CLASS, accountId]);
      }
    } finally {
      await runner.release();
    }
  }

  /** The resend's status, recording it first if the admin API's row is not there. */
  async begin(resend: NewResend): Promise<ResendStatus> {
    await recordResend(this.dataSource.manager, resend);
    const rows = await this.dataSource.query<{ status: ResendStatus }[]>(
      `SELECT status FROM resends WHERE id = $1`,
      [resend.id],
    );
    return rows[0]?.status ?? 'requested';
  }

  findHeld(log: HeldMailLog, query: HeldMailQuery): Promise<HeldMail[]> {
    return findHeldMail(log, this.dataSource, query);
  }

  /**
   * The resend is running and hands back `remaining` more recipients: total is what it handed back
   * already plus those. Nothing remaining and every outcome known: done.
   */
  async start(resendId: string, remaining: number): Promise<ResendStatus> {
    const rows = await this.dataSource.query<{ status: ResendStatus }[]>(
      `UPDATE resends SET total = resubmitted + $2, updated_at = now(),
         status = CASE WHEN $2 = 0 AND delivered + failed + over_quota_again >= resubmitted
                       THEN 'done' ELSE 'running' END
       WHERE id = $1 AND status <> 'done'
       RETURNING status`,
      [resendId, remaining],
    );
    return rows[0]?.status ?? 'done';
  }

  /**
   * Hands `held` back to the policy stage in ONE transaction: the resubmissions rows of its
   * recipients, the MessageResubmitted of those that were not resubmitted yet (the key decides:
   * another resend may have taken some), and the resend's counters. A crash before the commit
   * leaves no trace; after it, findHeldMail no longer offers these recipients.
   */
  async resubmit(resend: ResendInProgress, held: HeldMail): Promise<Resubmitted> {
    const qe = held.quotaExceeded;
    return this.dataSource.transaction(async (manager) => {
      // The outbox keeps an account's events in log order only if each writer locks its row first.
      if (UUID.test(resend.accountId)) {
        await manager.query(`SELECT id FROM accounts WHERE id = $1 FOR NO KEY UPDATE`, [resend.accountId]);
      }
      const inserted = await manager.query<{ recipient: string }[]>(
        `INSERT INTO resubmissions (quota_exceeded_event_id, recipient, message_id, resend_id)
         SELECT $1, r, $2, $3 FROM unnest($4::text[]) AS r
         ON CONFLICT (quota_exceeded_event_id, recipient) DO NOTHING
         RETURNING recipient`,
        [qe.id, held.messageId, resend.id, held.recipients],
      );
      const taken = new Set(inserted.map((row) => row.recipient));
      const recipients = held.recipients.filter((r) => taken.has(r));
      let eventId: string | undefined;
      if (recipients.length > 0) {
        // One event per (QuotaExceeded, resend): findHeldMail never offers a QuotaExceeded twice to one resend.
        eventId = resubmissionEventId(qe.id, resend.id);
        await appendToOutbox(manager, [
          createEvent('MessageResubmitted', {
            id: eventId,
            accountId: resend.accountId,
            messageId: held.messageId,
            causationId: resend.requestedEventId,
            data: {
              resendId: resend.id,
              recipients,
              mailFrom: qe.data.mailFrom,
              from: qe.data.from,
              size: qe.data.size,
              spoolKey: qe.data.spoolKey,
              smtpUtf8: qe.data.smtpUtf8,
              eightBitMime: qe.data.eightBitMime,
              quotaExceededEventId: qe.id,
            },
          }),
        ]);
      }
      // Recipients another resend took count for that one: out of this one's total.
      await manager.query(
        `UPDATE resends SET resubmitted = resubmitted + $2, total = total - $3, updated_at = now(),
           status = CASE WHEN resubmitted + $2 = total - $3
                          AND delivered + failed + over_quota_again >= resubmitted + $2
                         THEN 'done' ELSE 'running' END
         WHERE id = $1`,
        [resend.id, recipients.length, held.recipients.length - recipients.length],
      );
      return { recipients, eventId };
    });
  }
}
