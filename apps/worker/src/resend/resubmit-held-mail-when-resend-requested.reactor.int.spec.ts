import { randomUUID } from 'node:crypto';
import { Test, type TestingModule } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LOGGER, silentLogger } from '@relay/config';
import { createEvent, type EventOfType, type RelayEvent } from '@relay/domain';
import {
  EVENT_LOG,
  insertEvents,
  PostgresEventLog,
  type EventLog,
  type LoggedEvent,
  type ReadRange,
  type SubscribeOptions,
  type Subscription,
} from '@relay/event-log';
import {
  appendToOutbox,
  createDataSource,
  OutboxRelay,
  ProjectionRunner,
  recordResend,
  ResendProgressProjector,
  ResendsRepository,
  resubmissionEventId,
  writeEventsDirectly,
  type HeldMail,
  type ResendProgress,
} from '@relay/persistence';
import { createTestDatabase, type TestDatabase } from '@relay/testing';
import {
  ResubmissionsRepository,
  type ResendInProgress,
  type Resubmitted,
} from './resubmissions.repository.js';
import { waitFor } from '../testing/wait-for.js';
import { ResubmitHeldMailWhenResendRequestedReactor } from './resubmit-held-mail-when-resend-requested.reactor.js';

const HOUR = 3_600_000;

/** The log, recording each event whose batch a subscriber finished (and each failed batch). */
class ObservedLog implements EventLog {
  readonly handled = new Map<string, number>();
  failures = 0;

  constructor(private readonly log: EventLog) {}

  append(events: readonly RelayEvent[]): Promise<void> {
    return this.log.append(events);
  }

  subscribe(options: SubscribeOptions): Promise<Subscription> {
    return this.log.subscribe({
      ...options,
      handle: async (batch: readonly LoggedEvent[]) => {
        try {
          await options.handle(batch);
        } catch (error) {
          this.failures++;
          throw error;
        }
        for (const { event } of batch) this.handled.set(event.id, (this.handled.get(event.id) ?? 0) + 1);
      },
    });
  }

  readRange(range: ReadRange): AsyncIterable<LoggedEvent> {
    return this.log.readRange(range);
  }

  isHealthy(): Promise<boolean> {
    return this.log.isHealthy();
  }

  close(): Promise<void> {
    return this.log.close();
  }
}

/** Crashes once, right after the nth transaction committed: the resend must resume after it. */
class CrashingResubmissions extends ResubmissionsRepository {
  private crashAfter: number | undefined;
  private calls = 0;

  /** Crash after the nth transaction from now. */
  crashAfterNext(n: number): void {
    this.crashAfter = this.calls + n;
  }

  override async resubmit(resend: ResendInProgress, held: HeldMail): Promise<Resubmitted> {
    const result = await super.resubmit(resend, held);
    if (++this.calls === this.crashAfter) {
      this.crashAfter = undefined;
      throw new Error('worker crashed mid-resend');
    }
    return result;
  }
}

/**
 * How transactional writers reach the log: through the outbox and its relay, or (the Postgres log in
 * the same database, as apps/relay sets it up) straight into event_log in their own transaction.
 */
type WriteMode = 'outbox relay' | 'direct';

describe.each<WriteMode>(['outbox relay', 'direct'])(
  'ResubmitHeldMailWhenResendRequestedReactor on the Postgres event log, events written by %s',
  (mode) => {
    let db: TestDatabase;
    let dataSource: DataSource;
    let postgresLog: PostgresEventLog;
    let log: ObservedLog;
    let outbox: OutboxRelay | undefined;
    let progressRunner: ProjectionRunner;
    let worker: TestingModule;
    let resubmissions: CrashingResubmissions;
    let resends: ResendsRepository;
    let accountId: string;

    async function startWorker(): Promise<TestingModule> {
      const ref = await Test.createTestingModule({
        providers: [
          { provide: LOGGER, useValue: silentLogger },
          { provide: EVENT_LOG, useValue: log },
          { provide: DataSource, useValue: dataSource },
          { provide: ResubmissionsRepository, useValue: resubmissions },
          ResubmitHeldMailWhenResendRequestedReactor,
        ],
      }).compile();
      await ref.init();
      return ref;
    }

    const quotaExceeded = (
      messageId: string,
      recipients: readonly string[],
      occurredAt: Date,
      options: { accountId?: string; resendId?: string } = {},
    ): EventOfType<'QuotaExceeded'> =>
      createEvent('QuotaExceeded', {
        accountId: options.accountId ?? accountId,
        messageId,
        occurredAt: occurredAt.toISOString(),
        data: {
          recipients,
          mailFrom: 'bounces@shop.example',
          from: 'orders@shop.example',
          size: 2048,
          spoolKey: `2025/03/14/${messageId}`,
          period: occurredAt.toISOString().slice(0, 7),
          usage: { messages: 5, bytes: 10_240 },
          limits: { messages: 5, bytes: null },
          smtpUtf8: true,
          eightBitMime: false,
          ...(options.resendId ? { resendId: options.resendId } : {}),
        },
      });

    /** As the admin API does: the resends row and the ResendRequested, through the outbox, in one transaction. */
    async function requestResend(
      since: Date,
      options: { accountId?: string; requestedAt?: Date } = {},
    ): Promise<EventOfType<'ResendRequested'>> {
      const resendId = randomUUID();
      const requestedAt = options.requestedAt ?? new Date();
      const event = createEvent('ResendRequested', {
        accountId: options.accountId ?? accountId,
        occurredAt: requestedAt.toISOString(),
        data: { resendId, since: since.toISOString(), dryRun: false },
      });
      await dataSource.transaction(async (manager) => {
        await recordResend(manager, { id: resendId, accountId: event.accountId!, since, requestedAt });
        await appendToOutbox(manager, [event]);
      });
      return event;
    }

    /** Waits until the reactor has finished the request (its batch committed). */
    const handled = (event: RelayEvent, times = 1): Promise<true> =>
      waitFor(`the reactor to handle ${event.id}`, () =>
        (log.handled.get(event.id) ?? 0) >= times ? true : undefined,
      );

    async function resubmittedEvents(account = accountId): Promise<EventOfType<'MessageResubmitted'>[]> {
      const rows = await dataSource.query<{ payload: EventOfType<'MessageResubmitted'> }[]>(
        `SELECT payload FROM event_log WHERE account_id = $1 AND type = 'MessageResubmitted'
       ORDER BY tx_id, position`,
        [account],
      );
      return rows.map((r) => r.payload);
    }

    /** Every MessageResubmitted the outbox still holds has reached the log. */
    const outboxDrained = (): Promise<true> =>
      waitFor('the outbox to drain', async () => {
        const [row] = await dataSource.query<{ n: number }[]>(`SELECT count(*)::int AS n FROM outbox`);
        return row?.n === 0 ? true : undefined;
      });

    const progress = async (resendId: string): Promise<ResendProgress> => (await resends.get(resendId))!;

    async function markQueued(
      messageId: string,
      recipient: string,
      state: 'pending' | 'delivered',
    ): Promise<void> {
      await dataSource.query(
        `INSERT INTO delivery_recipients (message_id, recipient, account_id, domain, mail_from, spool_key, size,
         smtp_utf8, eight_bit_mime, received_at, queued_event_id, state, next_attempt_at)
       VALUES ($1, $2, $3, split_part($2, '@', 2), 'bounces@shop.example', $4, 2048, true, false, now(),
         $5, $6, now())`,
        [messageId, recipient, accountId, `2025/03/14/${messageId}`, randomUUID(), state],
      );
    }

    beforeAll(async () => {
      db = await createTestDatabase('resend_reactor');
      dataSource = await createDataSource({ url: db.url, poolSize: 8 }).initialize();
      postgresLog = await PostgresEventLog.connect({ url: db.url, pollIntervalMs: 50, logger: silentLogger });
      log = new ObservedLog(postgresLog);
      if (mode === 'direct') {
        writeEventsDirectly(dataSource, (manager, events) => insertEvents(manager, events));
      } else {
        outbox = new OutboxRelay({
          url: db.url,
          append: (events) => postgresLog.append(events),
          pollIntervalMs: 50,
          logger: silentLogger,
        });
        outbox.start();
      }
      progressRunner = new ProjectionRunner({
        projection: new ResendProgressProjector(),
        log: postgresLog,
        dataSource,
        logger: silentLogger,
      });
      await progressRunner.start();
      resubmissions = new CrashingResubmissions(dataSource);
      resends = new ResendsRepository(dataSource);
      worker = await startWorker();
    });

    afterAll(async () => {
      await worker?.close();
      await progressRunner?.stop();
      await outbox?.stop();
      await postgresLog?.close();
      await dataSource?.destroy();
      await db?.drop();
    });

    beforeEach(() => {
      accountId = randomUUID();
    });

    it('resubmits exactly the recipients held since `since`, one event per QuotaExceeded; older, delivered and other accounts’ mail stay', async () => {
      const now = Date.now();
      const older = quotaExceeded('m-older', ['old@example.org'], new Date(now - 3 * HOUR));
      const first = quotaExceeded(
        'm-first',
        ['ada@example.org', 'bob@example.org', 'cy@example.org'],
        new Date(now - HOUR),
      );
      const second = quotaExceeded('m-second', ['dee@example.org'], new Date(now - HOUR / 2));
      const otherAccount = quotaExceeded('m-other', ['eve@example.org'], new Date(now - HOUR), {
        accountId: randomUUID(),
      });
      await log.append([older, first, second, otherAccount]);
      // bob was delivered since (a resend of an earlier day, say); cy's delivery is on its way.
      await markQueued('m-first', 'bob@example.org', 'delivered');

      const requested = await requestResend(new Date(now - 2 * HOUR));
      await handled(requested);
      await outboxDrained();

      const events = await resubmittedEvents();
      expect(events).toEqual([
        {
          id: resubmissionEventId(first.id, requested.data.resendId),
          type: 'MessageResubmitted',
          version: 1,
          occurredAt: expect.any(String) as unknown,
          accountId,
          messageId: 'm-first',
          causationId: requested.id,
          data: {
            resendId: requested.data.resendId,
            recipients: ['ada@example.org', 'cy@example.org'],
            mailFrom: 'bounces@shop.example',
            from: 'orders@shop.example',
            size: 2048,
            spoolKey: '2025/03/14/m-first',
            smtpUtf8: true,
            eightBitMime: false,
            quotaExceededEventId: first.id,
          },
        },
        expect.objectContaining({
          id: resubmissionEventId(second.id, requested.data.resendId),
          messageId: 'm-second',
          data: expect.objectContaining({
            recipients: ['dee@example.org'],
            quotaExceededEventId: second.id,
          }) as unknown,
        }),
      ]);
      expect(await progress(requested.data.resendId)).toMatchObject({
        status: 'running',
        total: 3,
        resubmitted: 3,
        delivered: 0,
      });
    });

    it('leaves mail held back after the request alone', async () => {
      const now = Date.now();
      const requestedAt = new Date(now - HOUR);
      await log.append([
        quotaExceeded('m-before', ['ada@example.org'], new Date(now - 2 * HOUR)),
        quotaExceeded('m-after', ['bob@example.org'], new Date(now - HOUR / 2)),
      ]);
      const requested = await requestResend(new Date(now - 3 * HOUR), { requestedAt });
      await handled(requested);
      await outboxDrained();
      expect((await resubmittedEvents()).map((e) => e.messageId)).toEqual(['m-before']);
    });

    it('a second resend resubmits nothing, and neither does a redelivered request', async () => {
      const now = Date.now();
      await log.append([
        quotaExceeded('m-1', ['ada@example.org', 'bob@example.org'], new Date(now - HOUR)),
        quotaExceeded('m-2', ['cy@example.org'], new Date(now - HOUR)),
      ]);
      const first = await requestResend(new Date(now - 2 * HOUR));
      await handled(first);
      const second = await requestResend(new Date(now - 2 * HOUR));
      await handled(second);
      await outboxDrained();
      expect((await resubmittedEvents()).flatMap((e) => e.data.recipients)).toEqual([
        'ada@example.org',
        'bob@example.org',
        'cy@example.org',
      ]);
      expect(await progress(second.data.resendId)).toMatchObject({
        status: 'done',
        total: 0,
        resubmitted: 0,
      });

      // The whole group again, as after a lost position commit: both requests come once more.
      await worker.close();
      await dataSource.query(`DELETE FROM event_log_consumer_positions WHERE group_name = 'resend'`);
      worker = await startWorker();
      await handled(first, 2);
      await handled(second, 2);
      await outboxDrained();
      expect(await resubmittedEvents()).toHaveLength(2);
      expect(await progress(first.data.resendId)).toMatchObject({
        status: 'running',
        total: 3,
        resubmitted: 3,
      });
      expect(await progress(second.data.resendId)).toMatchObject({
        status: 'done',
        total: 0,
        resubmitted: 0,
      });
    });

    it('resumes after a crash in the middle, resubmitting each recipient once', async () => {
      const now = Date.now();
      const held = Array.from({ length: 5 }, (_, i) =>
        quotaExceeded(
          `m-crash-${i}`,
          [`r${i}@example.org`, `s${i}@example.org`],
          new Date(now - HOUR + i * 1000),
        ),
      );
      await log.append(held);
      const failuresBefore = log.failures;
      resubmissions.crashAfterNext(2);
      const requested = await requestResend(new Date(now - 2 * HOUR));
      await handled(requested);
      await outboxDrained();
      expect(log.failures).toBe(failuresBefore + 1);

      const events = await resubmittedEvents();
      expect(events.map((e) => e.messageId)).toEqual(held.map((e) => e.messageId));
      expect(events.flatMap((e) => e.data.recipients)).toHaveLength(10);
      expect(await progress(requested.data.resendId)).toMatchObject({
        status: 'running',
        total: 10,
        resubmitted: 10,
      });
      const [rows] = await dataSource.query<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM resubmissions WHERE resend_id = $1`,
        [requested.data.resendId],
      );
      expect(rows?.n).toBe(10);
    });

    it('shows the progress as the policy stage and delivery decide; a later resend picks up what was held back again', async () => {
      const now = Date.now();
      const original = quotaExceeded(
        'm-p',
        ['ada@example.org', 'bob@example.org', 'cy@example.org'],
        new Date(now - HOUR),
      );
      await log.append([original]);
      const requested = await requestResend(new Date(now - 2 * HOUR));
      const resendId = requested.data.resendId;
      await handled(requested);
      await outboxDrained();
      const [resubmitted] = await resubmittedEvents();
      expect(resubmitted?.data.recipients).toEqual(['ada@example.org', 'bob@example.org', 'cy@example.org']);

      // What the policy stage decides under the new plan, then what delivery says.
      const base = { accountId, messageId: 'm-p', causationId: resubmitted!.id };
      const heldAgain = quotaExceeded('m-p', ['cy@example.org'], new Date(), { resendId });
      await log.append([
        createEvent('MessageQueued', {
          ...base,
          data: {
            recipients: ['ada@example.org', 'bob@example.org'],
            mailFrom: 'bounces@shop.example',
            size: 2048,
            spoolKey: '2025/03/14/m-p',
            period: new Date().toISOString().slice(0, 7),
            smtpUtf8: true,
            eightBitMime: false,
            receivedAt: new Date().toISOString(),
            resendId,
          },
        }),
        { ...heldAgain, causationId: resubmitted!.id },
      ]);
      await markQueued('m-p', 'ada@example.org', 'pending');
      await markQueued('m-p', 'bob@example.org', 'pending');
      await log.append([
        createEvent('Delivered', {
          accountId,
          messageId: 'm-p',
          data: {
            recipient: 'ada@example.org',
            mx: 'mx.example.org',
            remoteReply: '250 2.0.0 Ok',
            attempt: 1,
            latencyMs: 30,
          },
        }),
        createEvent('Bounced', {
          accountId,
          messageId: 'm-p',
          data: {
            recipient: 'bob@example.org',
            bounceClass: 'hard',
            category: 'invalid-recipient',
            status: '5.1.1',
            diagnostic: '550 5.1.1 user unknown',
            source: 'smtp',
            attempt: 1,
          },
        }),
      ]);
      const done = await waitFor('the resend to be done', async () => {
        const p = await progress(resendId);
        return p.status === 'done' ? p : undefined;
      });
      expect(done).toEqual({
        id: resendId,
        accountId,
        since: new Date(now - 2 * HOUR).toISOString(),
        requestedAt: requested.occurredAt,
        status: 'done',
        total: 3,
        resubmitted: 3,
        delivered: 1,
        overQuotaAgain: 1,
        failed: 1,
      });

      // Once the plan allows more, a later resend hands back cy, held back again, and nobody else.
      const later = await requestResend(new Date(now - 2 * HOUR));
      await handled(later);
      await outboxDrained();
      const events = await resubmittedEvents();
      expect(events).toHaveLength(2);
      expect(events[1]).toMatchObject({
        id: resubmissionEventId(heldAgain.id, later.data.resendId),
        data: { recipients: ['cy@example.org'], quotaExceededEventId: heldAgain.id },
      });
      expect(await progress(later.data.resendId)).toMatchObject({
        status: 'running',
        total: 1,
        resubmitted: 1,
      });
    });
  },
);
