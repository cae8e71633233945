import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, type EventOfType, type RelayEvent } from '@relay/domain';
import {
  project,
  startProjectionHarness,
  startRunner,
  stopProjectionHarness,
  until,
  type ProjectionHarness,
} from '../testing/projection-harness.js';
import type { MessageReport, RecipientReport } from './delivery-report.js';
import { DeliveryReportProjector } from './delivery-report.projector.js';
import { DeliveryReportsRepository } from './delivery-reports.repository.js';

const ACCOUNT = '3970b2cf-531e-467c-ace3-b94552d5dcf5';
const OTHER_ACCOUNT = '7d1e6a52-0b8f-4a57-9e0c-5c3a1f2b9d40';
const ADA = 'ada@example.org';
const GRACE = 'grace@example.net';
const MX_ORG = 'mx1.example.org';
const MX_NET = 'mx.example.net';

/** Second `s` of the test's day, as the events write times. */
const at = (s: number): string => new Date(Date.UTC(2025, 2, 14, 9, 0, 0) + s * 1000).toISOString();

let messages = 0;
const newMessageId = (): string => `m${Date.now().toString(36)}${++messages}`;

interface MessageOptions {
  readonly accountId?: string;
  readonly recipients?: readonly string[];
  /** The second the ingress accepted it, as MessageQueued reports it. */
  readonly receivedSecond?: number;
}

/** Builds the events of one message, each at second `s` of the test's day. */
function message(id: string, options: MessageOptions = {}) {
  const accountId = options.accountId ?? ACCOUNT;
  const recipients = options.recipients ?? [ADA, GRACE];
  const base = { accountId, messageId: id };
  const spoolKey = `2025/03/14/${id}`;
  return {
    received: (s: number): EventOfType<'MessageReceived'> =>
      createEvent('MessageReceived', {
        ...base,
        occurredAt: at(s),
        data: {
          mailFrom: 'bounces@mail.example.com',
          recipients,
          from: 'billing@example.com',
          fromName: 'Example Billing',
          subject: 'Your invoice 2025-0314',
          headerMessageId: `${id}@app.example.com`,
          size: 48213,
          spoolKey,
          clientIp: '203.0.113.25',
          auth: 'smtp-auth',
          username: 'example-app',
          tls: true,
          smtpUtf8: false,
          eightBitMime: true,
        },
      }),
    queued: (s: number, to = recipients, resendId?: string): EventOfType<'MessageQueued'> =>
      createEvent('MessageQueued', {
        ...base,
        occurredAt: at(s),
        data: {
          recipients: to,
          mailFrom: 'bounces@mail.example.com',
          size: 48213,
          spoolKey,
          period: '2025-03',
          smtpUtf8: false,
          eightBitMime: true,
          receivedAt: at(options.receivedSecond ?? 0),
          ...(resendId ? { resendId } : {}),
        },
      }),
    delivered: (s: number, recipient: string, attempt: number, mx: string): EventOfType<'Delivered'> =>
      createEvent('Delivered', {
        ...base,
        occurredAt: at(s),
        data: {
          recipient,
          mx,
          remoteReply: `250 2.0.0 Ok: queued as Q${attempt}`,
          attempt,
          latencyMs: s * 1000,
        },
      }),
    deferred: (s: number, recipient: string, attempt: number, next: number): EventOfType<'Deferred'> =>
      createEvent('Deferred', {
        ...base,
        occurredAt: at(s),
        data: {
          recipient,
          mx: MX_NET,
          remoteReply: '451 4.7.1 Greylisted, try again later',
          attempt,
          nextAttemptAt: at(next),
        },
      }),
    bounced: (
      s: number,
      recipient: string,
      fields: Partial<EventOfType<'Bounced'>['data']> = {},
    ): EventOfType<'Bounced'> =>
      createEvent('Bounced', {
        ...base,
        occurredAt: at(s),
        data: {
          recipient,
          bounceClass: 'hard',
          category: 'invalid-recipient',
          status: '5.1.1',
          diagnostic: '550 5.1.1 <grace@example.net>: user unknown',
          source: 'smtp',
          mx: MX_NET,
          attempt: 1,
          ...fields,
        },
      }),
    suppressed: (s: number, recipient: string): EventOfType<'Suppressed'> =>
      createEvent('Suppressed', {
        ...base,
        occurredAt: at(s),
        data: {
          recipient,
          list: 'bounce',
          mailFrom: 'bounces@mail.example.com',
          from: 'billing@example.com',
          spoolKey,
        },
      }),
    quotaExceeded: (s: number, to: readonly string[]): EventOfType<'QuotaExceeded'> =>
      createEvent('QuotaExceeded', {
        ...base,
        occurredAt: at(s),
        data: {
          recipients: to,
          mailFrom: 'bounces@mail.example.com',
          from: 'billing@example.com',
          size: 48213,
          spoolKey,
          period: '2025-03',
          usage: { messages: 5, bytes: 241065 },
          limits: { messages: 5, bytes: null },
          smtpUtf8: false,
          eightBitMime: false,
        },
      }),
    resubmitted: (s: number, to: readonly string[], resendId: string): EventOfType<'MessageResubmitted'> =>
      createEvent('MessageResubmitted', {
        ...base,
        occurredAt: at(s),
        data: {
          resendId,
          recipients: to,
          mailFrom: 'bounces@mail.example.com',
          from: 'billing@example.com',
          size: 48213,
          spoolKey,
          smtpUtf8: false,
          eightBitMime: true,
          quotaExceededEventId: randomUUID(),
        },
      }),
  };
}

/** The report's message fields for a message built by message(), received at second 0. */
const messageFields = (
  id: string,
  fields: Partial<MessageReport> = {},
): Omit<MessageReport, 'recipients'> => ({
  id,
  accountId: ACCOUNT,
  mailFrom: 'bounces@mail.example.com',
  from: 'billing@example.com',
  subject: 'Your invoice 2025-0314',
  size: 48213,
  recipientsCount: 2,
  status: 'queued',
  receivedAt: at(0),
  updatedAt: at(0),
  ...fields,
});

const entry = (event: RelayEvent, fields: Record<string, unknown> = {}) => ({
  at: event.occurredAt,
  type: event.type,
  eventId: event.id,
  ...fields,
});

const recipientFields = (recipient: string, fields: Partial<RecipientReport>): RecipientReport => ({
  recipient,
  status: 'received',
  attempts: 0,
  lastReply: null,
  mx: null,
  nextAttemptAt: null,
  bounceClass: null,
  statusCode: null,
  timeline: [],
  ...fields,
});

/** One log, a runner of the delivery report on it, and the repository the admin API reads with. */
type Harness = ProjectionHarness<DeliveryReportProjector> & { readonly reports: DeliveryReportsRepository };

const withReports = (harness: ProjectionHarness<DeliveryReportProjector>): Harness => ({
  ...harness,
  reports: new DeliveryReportsRepository(harness.dataSource),
});

describe('delivery report projection on the Postgres event log', () => {
  let dataSource: DataSource;
  let h: Harness;

  beforeAll(async () => {
    h = withReports(
      await startProjectionHarness({
        database: 'delivery_report',
        projector: new DeliveryReportProjector(),
        generationCheckMs: 200,
      }),
    );
    dataSource = h.dataSource;
  });

  afterAll(() => stopProjectionHarness(h));

  it('follows a message from MessageReceived through retries to Delivered, per recipient', async () => {
    const id = newMessageId();
    const m = message(id);
    const received = m.received(0);
    const queued = m.queued(1);
    const deliveredAda = m.delivered(2, ADA, 1, MX_ORG);
    const deferred1 = m.deferred(3, GRACE, 1, 63);

    await project(h, [received]);
    expect(await h.reports.get(id)).toEqual({
      ...messageFields(id),
      recipients: [
        recipientFields(ADA, { timeline: [entry(received)] }),
        recipientFields(GRACE, { timeline: [entry(received)] }),
      ],
    });

    await project(h, [queued, deliveredAda, deferred1]);
    const afterFirstAttempt = await h.reports.get(id);
    expect(afterFirstAttempt).toMatchObject({ status: 'deferred', updatedAt: at(3) });
    expect(afterFirstAttempt?.recipients[1]).toEqual(
      recipientFields(GRACE, {
        status: 'deferred',
        attempts: 1,
        lastReply: '451 4.7.1 Greylisted, try again later',
        mx: MX_NET,
        nextAttemptAt: at(63),
        timeline: [
          entry(received),
          entry(queued),
          entry(deferred1, {
            reply: '451 4.7.1 Greylisted, try again later',
            mx: MX_NET,
            attempt: 1,
            nextAttemptAt: at(63),
          }),
        ],
      }),
    );

    const deferred2 = m.deferred(63, GRACE, 2, 363);
    const deliveredGrace = m.delivered(363, GRACE, 3, MX_NET);
    await project(h, [deferred2, deliveredGrace]);
    expect(await h.reports.get(id)).toEqual({
      ...messageFields(id, { status: 'delivered', updatedAt: at(363) }),
      recipients: [
        recipientFields(ADA, {
          status: 'delivered',
          attempts: 1,
          lastReply: '250 2.0.0 Ok: queued as Q1',
          mx: MX_ORG,
          timeline: [
            entry(received),
            entry(queued),
            entry(deliveredAda, { reply: '250 2.0.0 Ok: queued as Q1', mx: MX_ORG, attempt: 1 }),
          ],
        }),
        recipientFields(GRACE, {
          status: 'delivered',
          attempts: 3,
          lastReply: '250 2.0.0 Ok: queued as Q3',
          mx: MX_NET,
          timeline: [
            entry(received),
            entry(queued),
            entry(deferred1, {
              reply: '451 4.7.1 Greylisted, try again later',
              mx: MX_NET,
              attempt: 1,
              nextAttemptAt: at(63),
            }),
            entry(deferred2, {
              reply: '451 4.7.1 Greylisted, try again later',
              mx: MX_NET,
              attempt: 2,
              nextAttemptAt: at(363),
            }),
            entry(deliveredGrace, { reply: '250 2.0.0 Ok: queued as Q3', mx: MX_NET, attempt: 3 }),
          ],
        }),
      ],
    });
  });

  it('shows a DSN that bounces a delivered recipient: bounced, with both in the timeline', async () => {
    const id = newMessageId();
    const m = message(id, { recipients: [GRACE] });
    const received = m.received(0);
    const queued = m.queued(1);
    const delivered = m.delivered(2, GRACE, 1, MX_NET);
    const dsn = m.bounced(600, GRACE, {
      bounceClass: 'hard',
      category: 'invalid-recipient',
      status: '5.1.1',
      diagnostic: 'smtp; 550 5.1.1 user unknown',
      source: 'dsn',
      mx: undefined,
    });
    await project(h, [received, queued, delivered]);
    expect(await h.reports.get(id)).toMatchObject({ status: 'delivered' });
    await project(h, [dsn]);
    expect(await h.reports.get(id)).toEqual({
      ...messageFields(id, { status: 'bounced', recipientsCount: 1, updatedAt: at(600) }),
      recipients: [
        recipientFields(GRACE, {
          status: 'bounced',
          attempts: 1,
          lastReply: 'smtp; 550 5.1.1 user unknown',
          mx: MX_NET,
          bounceClass: 'hard',
          statusCode: '5.1.1',
          timeline: [
            entry(received),
            entry(queued),
            entry(delivered, { reply: '250 2.0.0 Ok: queued as Q1', mx: MX_NET, attempt: 1 }),
            entry(dsn, {
              status: '5.1.1',
              diagnostic: 'smtp; 550 5.1.1 user unknown',
              source: 'dsn',
              attempt: 1,
            }),
          ],
        }),
      ],
    });
  });

  it('is partially delivered when one recipient bounces and the other is delivered', async () => {
    const id = newMessageId();
    const m = message(id);
    const bounce = m.bounced(3, GRACE);
    await project(h, [m.received(0), m.queued(1), m.delivered(2, ADA, 1, MX_ORG), bounce]);
    const report = await h.reports.get(id);
    expect(report?.status).toBe('partially-delivered');
    expect(report?.recipients[1]).toMatchObject({
      recipient: GRACE,
      status: 'bounced',
      attempts: 1,
      lastReply: '550 5.1.1 <grace@example.net>: user unknown',
      mx: MX_NET,
      bounceClass: 'hard',
      statusCode: '5.1.1',
    });
    expect(report?.recipients[1]?.timeline.at(-1)).toEqual(
      entry(bounce, {
        status: '5.1.1',
        diagnostic: '550 5.1.1 <grace@example.net>: user unknown',
        source: 'smtp',
        mx: MX_NET,
        attempt: 1,
      }),
    );
  });

  it('holds quota-exceeded recipients, then follows their resend', async () => {
    const id = newMessageId();
    const m = message(id);
    const suppressed = m.suppressed(1, ADA);
    const held = m.quotaExceeded(1, [GRACE]);
    await project(h, [m.received(0), suppressed, held]);
    const report = await h.reports.get(id);
    expect(report?.status).toBe('held');
    expect(report?.recipients.map((r) => [r.recipient, r.status])).toEqual([
      [ADA, 'suppressed'],
      [GRACE, 'quota-exceeded'],
    ]);
    expect(report?.recipients[0]?.timeline.at(-1)).toEqual(entry(suppressed, { list: 'bounce' }));
    expect(report?.recipients[1]?.timeline.at(-1)).toEqual(entry(held));

    const resendId = randomUUID();
    const resubmitted = m.resubmitted(7200, [GRACE], resendId);
    await project(h, [resubmitted]);
    expect(await h.reports.get(id)).toMatchObject({ status: 'queued' });
    const requeued = m.queued(7201, [GRACE], resendId);
    await project(h, [requeued, m.delivered(7202, GRACE, 1, MX_NET)]);
    const after = await h.reports.get(id);
    expect(after?.status).toBe('partially-delivered');
    expect(after?.recipients[1]?.timeline.map((e) => [e.type, e.resendId])).toEqual([
      ['MessageReceived', undefined],
      ['QuotaExceeded', undefined],
      ['MessageResubmitted', resendId],
      ['MessageQueued', resendId],
      ['Delivered', undefined],
    ]);
  });

  it('builds a report from later events when it never saw the MessageReceived', async () => {
    const fromQueued = newMessageId();
    const q = message(fromQueued, { recipients: [ADA] });
    await project(h, [q.queued(5), q.delivered(6, ADA, 1, MX_ORG)]);
    expect(await h.reports.get(fromQueued)).toMatchObject({
      ...messageFields(fromQueued, {
        from: null,
        subject: null,
        recipientsCount: 1,
        status: 'delivered',
        receivedAt: at(0),
        updatedAt: at(6),
      }),
    });

    const fromDeferred = newMessageId();
    const d = message(fromDeferred, { recipients: [GRACE] });
    await project(h, [d.deferred(40, GRACE, 3, 100), d.delivered(100, GRACE, 4, MX_NET)]);
    expect(await h.reports.get(fromDeferred)).toEqual({
      id: fromDeferred,
      accountId: ACCOUNT,
      mailFrom: null,
      from: null,
      subject: null,
      size: null,
      recipientsCount: 1,
      status: 'delivered',
      // The first event seen is the best guess there is.
      receivedAt: at(40),
      updatedAt: at(100),
      recipients: [
        expect.objectContaining({ recipient: GRACE, status: 'delivered', attempts: 4, nextAttemptAt: null }),
      ],
    });
  });

  it('records a message refused for its From address as denied, and ignores a refusal without a message', async () => {
    const id = newMessageId();
    const denied = createEvent('RelayDenied', {
      accountId: ACCOUNT,
      messageId: id,
      occurredAt: at(9),
      data: {
        reason: 'from-not-allowed',
        clientIp: '203.0.113.25',
        mailFrom: 'bounces@mail.example.com',
        recipients: [ADA],
        from: 'sales@example.org',
        subject: 'Spring offer',
      },
    });
    const anonymous = createEvent('RelayDenied', {
      accountId: null,
      occurredAt: at(9),
      data: { reason: 'not-authenticated', clientIp: '198.51.100.1', mailFrom: '', recipients: [ADA] },
    });
    await project(h, [denied, anonymous]);
    expect(await h.reports.get(id)).toEqual({
      ...messageFields(id, {
        from: 'sales@example.org',
        subject: 'Spring offer',
        size: null,
        recipientsCount: 1,
        status: 'denied',
        receivedAt: at(9),
        updatedAt: at(9),
      }),
      recipients: [
        recipientFields(ADA, { status: 'denied', timeline: [entry(denied, { reason: 'from-not-allowed' })] }),
      ],
    });
  });

  it('counts no attempt twice when a batch is redelivered, nor after the log replays the whole group', async () => {
    const id = newMessageId();
    const m = message(id, { recipients: [GRACE] });
    await project(h, [m.received(0), m.queued(1)]);
    h.observed.failAfterCommitOnce = true;
    const deferred = m.deferred(2, GRACE, 1, 62);
    await h.log.append([deferred]);
    await until(() => h.observed.handled.get(deferred.id) === 2, 'the redelivery');
    const report = await h.reports.get(id);
    expect(report?.recipients[0]).toMatchObject({ status: 'deferred', attempts: 1 });
    expect(report?.recipients[0]?.timeline.filter((e) => e.type === 'Deferred')).toHaveLength(1);

    // The log forgets the group's position: every event comes again, and nothing changes.
    const before = await Promise.all([h.reports.get(id), h.reports.list({ accountId: ACCOUNT, limit: 100 })]);
    await h.runner.stop();
    await dataSource.query(`DELETE FROM event_log_consumer_positions`);
    h.observed.handled.clear();
    h.runner = startRunner(h, dataSource);
    await h.runner.start();
    await project(h, [m.delivered(70, GRACE, 2, MX_NET)]);
    await until(() => h.observed.handled.get(deferred.id) === 1, 'the replay');
    const [after, listAfter] = await Promise.all([
      h.reports.get(id),
      h.reports.list({ accountId: ACCOUNT, limit: 100 }),
    ]);
    expect(after?.recipients[0]).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(after?.recipients[0]?.timeline).toEqual([
      ...before[0]!.recipients[0]!.timeline,
      expect.anything(),
    ]);
    expect(listAfter.items.filter((i) => i.id !== id)).toEqual(before[1].items.filter((i) => i.id !== id));
  });

  it('lists an account newest first by received time, filtered by status and since, a page at a time', async () => {
    const accountId = randomUUID();
    const ids = [newMessageId(), newMessageId(), newMessageId(), newMessageId(), newMessageId()];
    const events: RelayEvent[] = [];
    ids.forEach((id, i) => {
      // Two messages share a received time: the message id orders them.
      const receivedSecond = i === 4 ? 3 : i;
      const m = message(id, { accountId, recipients: [ADA], receivedSecond });
      events.push(m.received(receivedSecond), m.queued(10));
      if (i % 2 === 0) events.push(m.delivered(20, ADA, 1, MX_ORG));
    });
    await project(h, events);

    const all = await h.reports.list({ accountId, limit: 100 });
    const expectedOrder = [...ids.slice(0, 3), ...[ids[3]!, ids[4]!].sort()].reverse();
    expect(all.items.map((i) => i.id)).toEqual(expectedOrder);
    expect(all.nextCursor).toBeNull();

    const paged: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await h.reports.list({ accountId, limit: 2, ...(cursor ? { cursor } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(2);
      paged.push(...page.items.map((i) => i.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(paged).toEqual(expectedOrder);

    const delivered = await h.reports.list({ accountId, status: 'delivered', limit: 100 });
    expect(delivered.items.map((i) => i.id)).toEqual([ids[4], ids[2], ids[0]]);
    const since = await h.reports.list({ accountId, since: new Date(at(2)), limit: 100 });
    expect(since.items.map((i) => i.id)).toEqual(expectedOrder.slice(0, 3));
    expect(await h.reports.list({ accountId: OTHER_ACCOUNT, limit: 10 })).toEqual({
      items: [],
      nextCursor: null,
    });
    expect(await h.reports.list({ accountId, limit: 10, cursor: 'not-a-cursor' })).toEqual({
      items: [],
      nextCursor: null,
    });
  });
});

describe('delivery report projection on the Kafka event log', () => {
  let dataSource: DataSource;
  let h: Harness;

  beforeAll(async () => {
    h = withReports(
      await startProjectionHarness({
        database: 'delivery_report_kafka',
        projector: new DeliveryReportProjector(),
        generationCheckMs: 200,
        kafka: 'delivery-report',
      }),
    );
    dataSource = h.dataSource;
  });

  afterAll(() => stopProjectionHarness(h));

  it('applies an event published twice (same id, two offsets) once, across partitions', async () => {
    const first = newMessageId();
    const second = newMessageId();
    const a = message(first, { recipients: [GRACE] });
    const b = message(second, { accountId: OTHER_ACCOUNT, recipients: [ADA] });
    const deferred = a.deferred(2, GRACE, 1, 62);
    await project(h, [a.received(0), b.received(0), a.queued(1), b.queued(1), deferred, deferred]);
    await project(h, [b.delivered(3, ADA, 1, MX_ORG), a.delivered(62, GRACE, 2, MX_NET)]);

    const reportA = await h.reports.get(first);
    expect(reportA?.status).toBe('delivered');
    expect(reportA?.recipients[0]?.attempts).toBe(2);
    expect(reportA?.recipients[0]?.timeline.map((e) => e.type)).toEqual([
      'MessageReceived',
      'MessageQueued',
      'Deferred',
      'Delivered',
    ]);
    expect(await h.reports.get(second)).toMatchObject({ accountId: OTHER_ACCOUNT, status: 'delivered' });
    const stored: { partition: number }[] = await dataSource.query(
      `SELECT partition FROM projection_positions WHERE projection = 'delivery-report'`,
    );
    expect(stored.length).toBeGreaterThanOrEqual(1);
  });
});
