import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { MessageQueued, RelayEvent } from '@relay/domain';
import { appendToOutbox, prepared } from '@relay/persistence';

/** One recipient waiting for delivery, as its row holds it. */
export interface QueuedRecipient {
  readonly messageId: string;
  readonly recipient: string;
  readonly accountId: string;
  readonly domain: string;
  readonly mailFrom: string;
  readonly spoolKey: string;
  readonly size: number;
  readonly smtpUtf8: boolean;
  readonly eightBitMime: boolean;
  readonly receivedAt: Date;
  /** Attempts made before this one. */
  readonly attempts: number;
  /** Set for mail that must not use the VERP address: '' is the null return path. */
  readonly returnPath: string | null;
}

/** A recipient to put on the queue. */
export interface NewQueuedRecipient {
  readonly messageId: string;
  readonly recipient: string;
  readonly accountId: string;
  readonly mailFrom: string;
  readonly spoolKey: string;
  readonly size: number;
  readonly smtpUtf8: boolean;
  readonly eightBitMime: boolean;
  readonly receivedAt: string;
  /** The event that queued it. */
  readonly queuedEventId: string;
  readonly returnPath?: string;
}

/** A recipient's next state after an attempt, with the event that says so. */
export type RecipientUpdate =
  | { readonly recipient: string; readonly state: 'delivered' | 'bounced'; readonly event: RelayEvent }
  | {
      readonly recipient: string;
      readonly state: 'pending';
      readonly nextAttemptAt: Date;
      readonly event: RelayEvent;
    };

interface Row {
  message_id: string;
  recipient: string;
  account_id: string;
  domain: string;
  mail_from: string;
  spool_key: string;
  size: string;
  smtp_utf8: boolean;
  eight_bit_mime: boolean;
  received_at: Date;
  attempts: number;
  return_path: string | null;
}

const toQueued = (row: Row): QueuedRecipient => ({
  messageId: row.message_id,
  recipient: row.recipient,
  accountId: row.account_id,
  domain: row.domain,
  mailFrom: row.mail_from,
  spoolKey: row.spool_key,
  size: Number(row.size),
  smtpUtf8: row.smtp_utf8,
  eightBitMime: row.eight_bit_mime,
  receivedAt: row.received_at,
  attempts: row.attempts,
  returnPath: row.return_path,
});

const COLUMNS = `message_id, recipient, account_id, domain, mail_from, spool_key, size, smtp_utf8,
  eight_bit_mime, received_at, attempts, return_path`;

/** New recipients, each leased to `$2` (when given) for `$3` ms; a recipient already queued stays as it is. */
const ENQUEUE_SQL = prepared(`
  INSERT INTO delivery_recipients (message_id, recipient, account_id, domain, mail_from, spool_key, size,
    smtp_utf8, eight_bit_mime, received_at, queued_event_id, return_path, next_attempt_at, lease_owner,
    lease_until)
  SELECT r.message_id, r.recipient, r.account_id, r.domain, r.mail_from, r.spool_key, r.size,
    r.smtp_utf8, r.eight_bit_mime, r.received_at, r.queued_event_id, r.return_path, now(), $2::text,
    CASE WHEN $2::text IS NULL THEN NULL ELSE now() + $3 * interval '1 millisecond' END
  FROM jsonb_to_recordset($1::jsonb) AS r(message_id text, recipient text, account_id text, domain text,
    mail_from text, spool_key text, size bigint, smtp_utf8 boolean, eight_bit_mime boolean,
    received_at timestamptz, queued_event_id uuid, return_path text)
  ON CONFLICT (message_id, recipient) DO NOTHING
  RETURNING ${COLUMNS}`);

// Rows found by a list of keys: planned per call, not prepared (see `prepared`).
const OUTCOMES_SQL = `
  UPDATE delivery_recipients d SET state = u.state, attempts = d.attempts + 1,
    next_attempt_at = COALESCE(u.next_attempt_at, d.next_attempt_at),
    lease_owner = NULL, lease_until = NULL, updated_at = now()
  FROM jsonb_to_recordset($1::jsonb)
    AS u(message_id text, recipient text, state text, next_attempt_at timestamptz)
  WHERE d.message_id = u.message_id AND d.recipient = u.recipient`;

interface PendingOutcomes {
  readonly messageId: string;
  readonly updates: readonly RecipientUpdate[];
  resolve(): void;
  reject(error: unknown): void;
}

/** Most outcomes written in one transaction. */
const OUTCOME_BATCH = 500;

/** The lower-cased domain of an address: recipients of one domain share a transaction. */
export const domainOf = (address: string): string =>
  address.slice(address.lastIndexOf('@') + 1).toLowerCase();

/**
 * SQL of the delivery queue (table delivery_recipients). Outcomes are written together with their
 * events (through the outbox) in one transaction, so a recipient's state and the log never
 * disagree.
 */
@Injectable()
export class DeliveryQueueRepository {
  private readonly pendingOutcomes: PendingOutcomes[] = [];
  private flushing: Promise<void> | undefined;

  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /** Queues the recipients of MessageQueued events (see enqueueRecipients). */
  async enqueue(events: readonly MessageQueued[], leaseOwner?: string): Promise<QueuedRecipient[]> {
    return this.enqueueRecipients(
      events.flatMap((event) =>
        event.data.recipients.map((recipient) => ({
          messageId: event.messageId ?? '',
          recipient,
          accountId: event.accountId ?? '',
          mailFrom: event.data.mailFrom,
          spoolKey: event.data.spoolKey,
          size: event.data.size,
          smtpUtf8: event.data.smtpUtf8,
          eightBitMime: event.data.eightBitMime,
          receivedAt: event.data.receivedAt,
          queuedEventId: event.id,
        })),
      ),
      leaseOwner,
    );
  }

  /**
   * Puts recipients on the queue. Recipients already queued for the message are skipped (a
   * redelivered event). With `leaseOwner` the new rows are leased to that worker, which delivers
   * them at once; without, the poller finds them.
   */
  async enqueueRecipients(
    recipients: readonly NewQueuedRecipient[],
    leaseOwner?: string,
    leaseMs = 600_000,
  ): Promise<QueuedRecipient[]> {
    if (recipients.length === 0) return [];
    const rows = recipients.map((r) => ({
      message_id: r.messageId,
      recipient: r.recipient,
      account_id: r.accountId,
      domain: domainOf(r.recipient),
      mail_from: r.mailFrom,
      spool_key: r.spoolKey,
      size: r.size,
      smtp_utf8: r.smtpUtf8,
      eight_bit_mime: r.eightBitMime,
      received_at: r.receivedAt,
      queued_event_id: r.queuedEventId,
      return_path: r.returnPath ?? null,
    }));
    const inserted: Row[] = await this.dataSource.query(ENQUEUE_SQL, [
      JSON.stringify(rows),
      leaseOwner ?? null,
      leaseMs,
    ]);
    return inserted.map(toQueued);
  }

  /** Leases up to `limit` due recipients nobody holds (or whose holder's lease ran out). */
  async claimDue(owner: string, limit: number, leaseMs = 600_000): Promise<QueuedRecipient[]> {
    // TypeORM answers an UPDATE ... RETURNING with [rows, affected count].
    const [rows]: [Row[], number] = await this.dataSource.query(
      `UPDATE delivery_recipients d SET lease_owner = $1, lease_until = now() + $3 * interval '1 millisecond'
       FROM (SELECT message_id, recipient FROM delivery_recipients
             WHERE state = 'pending' AND next_attempt_at <= now()
               AND (lease_until IS NULL OR lease_until < now())
             ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
       WHERE d.message_id = due.message_id AND d.recipient = due.recipient
       RETURNING ${COLUMNS.split(',')
         .map((c) => `d.${c.trim()}`)
         .join(', ')}`,
      [owner, limit, leaseMs],
    );
    return rows.map(toQueued);
  }

  /**
   * Writes the attempt's outcome for each recipient and its event, in one transaction. Calls made
   * while a write is in flight are written together in the next one (group commit): a
   * transaction per delivered message was a large share of the database's work.
   */
  recordOutcomes(messageId: string, updates: readonly RecipientUpdate[]): Promise<void> {
    if (updates.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.pendingOutcomes.push({ messageId, updates, resolve, reject });
      this.flushing ??= this.flushOutcomes();
    });
  }

  private async flushOutcomes(): Promise<void> {
    try {
      while (this.pendingOutcomes.length > 0) {
        const batch = this.pendingOutcomes.splice(0, OUTCOME_BATCH);
        try {
          await this.writeOutcomes(
            batch.flatMap((b) => b.updates.map((u) => ({ messageId: b.messageId, u }))),
          );
          for (const call of batch) call.resolve();
        } catch (error) {
          for (const call of batch) call.reject(error);
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async writeOutcomes(rows: readonly { messageId: string; u: RecipientUpdate }[]): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      await manager.query(OUTCOMES_SQL, [
        JSON.stringify(
          rows.map(({ messageId, u }) => ({
            message_id: messageId,
            recipient: u.recipient,
            state: u.state,
            next_attempt_at: u.state === 'pending' ? u.nextAttemptAt.toISOString() : null,
          })),
        ),
      ]);
      await appendToOutbox(
        manager,
        rows.map(({ u }) => u.event),
      );
    });
  }

  /** Gives leased recipients back (a worker stopping before it attempted them). */
  async release(owner: string, keys: readonly { messageId: string; recipient: string }[]): Promise<void> {
    if (keys.length === 0) return;
    await this.dataSource.query(
      `UPDATE delivery_recipients d SET lease_owner = NULL, lease_until = NULL
       FROM jsonb_to_recordset($2::jsonb) AS k("messageId" text, recipient text)
       WHERE d.message_id = k."messageId" AND d.recipient = k.recipient AND d.lease_owner = $1`,
      [owner, JSON.stringify(keys)],
    );
  }

  /** The account and recipients of a message, for mapping an asynchronous bounce back to it. */
  async findMessage(messageId: string): Promise<{ accountId: string; recipients: string[] } | null> {
    const rows: { account_id: string; recipient: string }[] = await this.dataSource.query(
      `SELECT account_id, recipient FROM delivery_recipients WHERE message_id = $1`,
      [messageId],
    );
    const first = rows[0];
    return first ? { accountId: first.account_id, recipients: rows.map((r) => r.recipient) } : null;
  }

  /** How many recipients wait for delivery, for the queue-depth metric. */
  async pendingCount(): Promise<number> {
    const rows: { n: string }[] = await this.dataSource.query(
      `SELECT count(*) AS n FROM delivery_recipients WHERE state = 'pending'`,
    );
    return Number(rows[0]?.n ?? 0);
  }
}
