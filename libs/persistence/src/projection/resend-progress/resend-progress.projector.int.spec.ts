import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, type EventOfType } from '@relay/domain';
import { createTestDatabase, type TestDatabase } from '@relay/testing';
import { createDataSource } from '../../data-source.js';
import {
  ResendProgressProjector,
  resubmissionEventId,
  type ResendProgressEvent,
} from './resend-progress.projector.js';
import { recordResend, ResendsRepository, type ResendProgress } from './resends.repository.js';

const ACCOUNT = '3970b2cf-531e-467c-ace3-b94552d5dcf5';

interface Held {
  readonly quotaExceededEventId: string;
  readonly messageId: string;
  readonly recipients: readonly string[];
}

let db: TestDatabase;
let dataSource: DataSource;
let resends: ResendsRepository;
const projector = new ResendProgressProjector();

/** A running resend that has resubmitted `held`, as the worker leaves it. */
async function resubmitted(held: readonly Held[], total?: number): Promise<string> {
  const id = randomUUID();
  const count = held.reduce((n, h) => n + h.recipients.length, 0);
  await dataSource.transaction(async (manager) => {
    await recordResend(manager, {
      id,
      accountId: ACCOUNT,
      since: new Date(Date.now() - 3_600_000),
      requestedAt: new Date(),
    });
    for (const h of held) {
      await manager.query(
        `INSERT INTO resubmissions (quota_exceeded_event_id, recipient, message_id, resend_id)
         SELECT $1, r, $2, $3 FROM unnest($4::text[]) AS r`,
        [h.quotaExceededEventId, h.messageId, id, h.recipients],
      );
    }
    await manager.query(`UPDATE resends SET status = 'running', total = $2, resubmitted = $3 WHERE id = $1`, [
      id,
      total ?? count,
      count,
    ]);
  });
  return id;
}

const held = (messageId: string, recipients: readonly string[]): Held => ({
  quotaExceededEventId: randomUUID(),
  messageId,
  recipients,
});

const causedBy = (resendId: string, h: Held): string => resubmissionEventId(h.quotaExceededEventId, resendId);

const queued = (
  resendId: string | undefined,
  h: Held,
  recipients = h.recipients,
): EventOfType<'MessageQueued'> =>
  createEvent('MessageQueued', {
    accountId: ACCOUNT,
    messageId: h.messageId,
    ...(resendId ? { causationId: causedBy(resendId, h) } : {}),
    data: {
      recipients,
      mailFrom: 'bounces@shop.example',
      size: 1200,
      spoolKey: `spool/${h.messageId}`,
      period: '2025-03',
      smtpUtf8: false,
      eightBitMime: false,
      receivedAt: new Date().toISOString(),
      ...(resendId ? { resendId } : {}),
    },
  });

const overQuota = (resendId: string, h: Held, recipients = h.recipients): EventOfType<'QuotaExceeded'> =>
  createEvent('QuotaExceeded', {
    accountId: ACCOUNT,
    messageId: h.messageId,
    causationId: causedBy(resendId, h),
    data: {
      recipients,
      mailFrom: 'bounces@shop.example',
      from: 'orders@shop.example',
      size: 1200,
      spoolKey: `spool/${h.messageId}`,
      period: '2025-03',
      usage: { messages: 5, bytes: 6000 },
      limits: { messages: 5, bytes: null },
      smtpUtf8: false,
      eightBitMime: false,
      resendId,
    },
  });

const suppressed = (causationId: string, h: Held, recipient: string): EventOfType<'Suppressed'> =>
  createEvent('Suppressed', {
    accountId: ACCOUNT,
    messageId: h.messageId,
    causationId,
    data: {
      recipient,
      list: 'bounce',
      mailFrom: 'bounces@shop.example',
      from: 'orders@shop.example',
      spoolKey: `spool/${h.messageId}`,
    },
  });

const delivered = (h: Held, recipient: string): EventOfType<'Delivered'> =>
  createEvent('Delivered', {
    accountId: ACCOUNT,
    messageId: h.messageId,
    data: { recipient, mx: 'mx.example.org', remoteReply: '250 2.0.0 Ok', attempt: 1, latencyMs: 40 },
  });

const bounced = (h: Held, recipient: string): EventOfType<'Bounced'> =>
  createEvent('Bounced', {
    accountId: ACCOUNT,
    messageId: h.messageId,
    data: {
      recipient,
      bounceClass: 'hard',
      category: 'invalid-recipient',
      status: '5.1.1',
      diagnostic: '550 5.1.1 user unknown',
      source: 'smtp',
      attempt: 1,
    },
  });

/** Given events, in one batch as the runner hands them over. */
const project = (events: readonly ResendProgressEvent[]): Promise<void> =>
  dataSource.transaction((manager) => projector.applyBatch(events, manager));

const progress = async (id: string): Promise<ResendProgress> => (await resends.get(id))!;

async function outcomes(resendId: string): Promise<Record<string, string | null>> {
  const rows = await dataSource.query<{ message_id: string; recipient: string; outcome: string | null }[]>(
    `SELECT message_id, recipient, outcome FROM resubmissions WHERE resend_id = $1`,
    [resendId],
  );
  return Object.fromEntries(rows.map((r) => [`${r.message_id} ${r.recipient}`, r.outcome]));
}

const counters = (p: ResendProgress) => ({
  status: p.status,
  total: p.total,
  resubmitted: p.resubmitted,
  delivered: p.delivered,
  overQuotaAgain: p.overQuotaAgain,
  failed: p.failed,
});

beforeAll(async () => {
  db = await createTestDatabase('resend_progress');
  dataSource = await createDataSource({ url: db.url, poolSize: 4 }).initialize();
  resends = new ResendsRepository(dataSource);
});

afterAll(async () => {
  await dataSource?.destroy();
  await db?.drop();
});

describe('resend-progress projection', () => {
  it('counts delivered, bounced and held back again; done once every resubmitted recipient has an outcome', async () => {
    const m1 = held('m1-' + randomUUID(), ['ada@example.org', 'bob@example.org']);
    const m2 = held('m2-' + randomUUID(), ['cy@example.org']);
    const id = await resubmitted([m1, m2]);

    await project([queued(id, m1), overQuota(id, m2)]);
    expect(counters(await progress(id))).toEqual({
      status: 'running',
      total: 3,
      resubmitted: 3,
      delivered: 0,
      overQuotaAgain: 1,
      failed: 0,
    });
    await project([delivered(m1, 'ada@example.org')]);
    expect((await progress(id)).status).toBe('running');
    await project([bounced(m1, 'bob@example.org')]);
    expect(counters(await progress(id))).toEqual({
      status: 'done',
      total: 3,
      resubmitted: 3,
      delivered: 1,
      overQuotaAgain: 1,
      failed: 1,
    });
    expect(await outcomes(id)).toEqual({
      [`${m1.messageId} ada@example.org`]: 'delivered',
      [`${m1.messageId} bob@example.org`]: 'bounced',
      [`${m2.messageId} cy@example.org`]: 'over-quota',
    });
  });

  it('counts an event the log holds twice once, and outcomes of mail no resend handed back not at all', async () => {
    const m = held('m-' + randomUUID(), ['ada@example.org', 'bob@example.org']);
    const other = held('o-' + randomUUID(), ['ada@example.org']);
    const id = await resubmitted([m]);
    const queuedEvent = queued(id, m);
    const deliveredEvent = delivered(m, 'ada@example.org');
    await project([
      // The first attempt of another message, and a queueing that is no resend's.
      queued(undefined, other),
      delivered(other, 'ada@example.org'),
      queuedEvent,
      queuedEvent,
      deliveredEvent,
      deliveredEvent,
    ]);
    await project([deliveredEvent]);
    expect(counters(await progress(id))).toMatchObject({ status: 'running', delivered: 1, failed: 0 });
  });

  it('does not count a delivery before the policy stage queued the recipient for the resend', async () => {
    const m = held('m-' + randomUUID(), ['ada@example.org']);
    const id = await resubmitted([m]);
    await project([delivered(m, 'ada@example.org')]);
    expect((await progress(id)).delivered).toBe(0);
    expect(await outcomes(id)).toEqual({ [`${m.messageId} ada@example.org`]: null });
  });

  it('counts a recipient the policy stage suppressed as failed, when the resubmission caused it', async () => {
    const m = held('m-' + randomUUID(), ['ada@example.org', 'bob@example.org']);
    const id = await resubmitted([m]);
    await project([
      suppressed(randomUUID(), m, 'bob@example.org'),
      suppressed(causedBy(id, m), m, 'ada@example.org'),
      queued(id, m, ['bob@example.org']),
      delivered(m, 'bob@example.org'),
    ]);
    expect(counters(await progress(id))).toMatchObject({ status: 'done', delivered: 1, failed: 1 });
    expect(await outcomes(id)).toEqual({
      [`${m.messageId} ada@example.org`]: 'suppressed',
      [`${m.messageId} bob@example.org`]: 'delivered',
    });
  });

  it('moves a delivery that a DSN bounces afterwards from delivered to failed', async () => {
    const m = held('m-' + randomUUID(), ['ada@example.org']);
    const id = await resubmitted([m]);
    await project([queued(id, m), delivered(m, 'ada@example.org')]);
    expect(counters(await progress(id))).toMatchObject({ status: 'done', delivered: 1, failed: 0 });
    await project([bounced(m, 'ada@example.org')]);
    expect(counters(await progress(id))).toMatchObject({ status: 'done', delivered: 0, failed: 1 });
  });

  it('counts a recipient held back again for the first resend and its delivery for the second', async () => {
    const first = held('m-' + randomUUID(), ['ada@example.org']);
    const firstId = await resubmitted([first]);
    const again = overQuota(firstId, first);
    await project([again]);
    // The second resend replays the QuotaExceeded that held the recipient back again.
    const second: Held = { ...first, quotaExceededEventId: again.id };
    const secondId = await resubmitted([second]);
    await project([queued(secondId, second), delivered(second, 'ada@example.org')]);
    expect(counters(await progress(firstId))).toMatchObject({
      status: 'done',
      overQuotaAgain: 1,
      delivered: 0,
    });
    expect(counters(await progress(secondId))).toMatchObject({
      status: 'done',
      overQuotaAgain: 0,
      delivered: 1,
    });
  });

  it('is not done while the worker has still to resubmit some of its total', async () => {
    const m = held('m-' + randomUUID(), ['ada@example.org']);
    const id = await resubmitted([m], 5);
    await project([queued(id, m), delivered(m, 'ada@example.org')]);
    expect(counters(await progress(id))).toMatchObject({ status: 'running', resubmitted: 1, delivered: 1 });
  });

  it('rebuilds to the same counters: reset, then the same events again', async () => {
    const m1 = held('m1-' + randomUUID(), ['ada@example.org', 'bob@example.org']);
    const m2 = held('m2-' + randomUUID(), ['cy@example.org']);
    const id = await resubmitted([m1, m2]);
    const events = [
      queued(id, m1),
      overQuota(id, m2),
      delivered(m1, 'ada@example.org'),
      bounced(m1, 'bob@example.org'),
    ];
    await project(events);
    const before = await progress(id);
    expect(before.status).toBe('done');

    await dataSource.transaction((manager) => projector.reset(manager));
    expect(counters(await progress(id))).toMatchObject({
      status: 'running',
      delivered: 0,
      failed: 0,
      overQuotaAgain: 0,
    });
    expect(Object.values(await outcomes(id))).toEqual([null, null, null]);
    await project(events);
    expect(await progress(id)).toEqual(before);
  });
});
