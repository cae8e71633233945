import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, type EventOfType } from '@relay/domain';
import type { EventLog } from '@relay/event-log';
import { startAdminApiTestApp, type AdminApiTestApp, type Reply } from '../testing/admin-api-test-app.js';

const UNKNOWN_ACCOUNT = '6f1c7a8e-3b5d-4e2f-9a1b-0c2d3e4f5a6b';
const HOUR = 3_600_000;

interface Accepted {
  id: string;
  status: string;
  since: string;
  links: { self: string };
}

interface DryRun {
  since: string;
  items: { messageId: string; recipients: string[]; heldAt: string }[];
  total: number;
}

let api: AdminApiTestApp;
let dataSource: DataSource;
let eventLog: EventLog;
let baseUrl: string;

const call = <T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<Reply<T>> =>
  api.request<T>(method, path, { body });

const newAccount = (): Promise<string> => api.newAccount({ name: 'Shop', allowedFrom: ['@shop.example'] });

const quotaExceeded = (
  accountId: string,
  messageId: string,
  recipients: readonly string[],
  occurredAt: Date,
): EventOfType<'QuotaExceeded'> =>
  createEvent('QuotaExceeded', {
    accountId,
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
      smtpUtf8: false,
      eightBitMime: false,
    },
  });

/** The account's ResendRequested events once the outbox relay has moved them to the log. */
async function requests(accountId: string, count: number): Promise<EventOfType<'ResendRequested'>[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const rows = await dataSource.query<{ payload: EventOfType<'ResendRequested'> }[]>(
      `SELECT payload FROM event_log WHERE account_id = $1 AND type = 'ResendRequested' ORDER BY tx_id, position`,
      [accountId],
    );
    if (rows.length >= count) return rows.map((r) => r.payload);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} ResendRequested`);
    await sleep(25);
  }
}

const resendRows = async (accountId: string): Promise<number> => {
  const [row] = await dataSource.query<{ n: number }[]>(
    `SELECT count(*)::int AS n FROM resends WHERE account_id = $1`,
    [accountId],
  );
  return row?.n ?? 0;
};

const near = (iso: string, expected: number): boolean => Math.abs(Date.parse(iso) - expected) < 10_000;

beforeAll(async () => {
  api = await startAdminApiTestApp({ name: 'resends', eventLog: 'postgres', outboxRelayPollMs: 50 });
  ({ dataSource, eventLog, baseUrl } = api);
});

afterAll(async () => {
  await api?.close();
});

describe('POST /v1/accounts/:id/resends', () => {
  it('refuses a since more than 72 hours ago with a 400 that says the window is 72 hours', async () => {
    const accountId = await newAccount();
    const reply = await call<{ message: string[] }>('POST', `/v1/accounts/${accountId}/resends`, {
      since: new Date(Date.now() - 73 * HOUR).toISOString(),
    });
    expect(reply.status).toBe(400);
    expect(reply.body.message).toEqual([
      expect.stringMatching(
        /^since is more than 72 hours ago: a resend reaches back at most 72 hours \(the resend window\), so since must be \S+Z or later$/,
      ),
    ]);
    const dry = await call('POST', `/v1/accounts/${accountId}/resends`, {
      since: new Date(Date.now() - 80 * HOUR).toISOString(),
      dryRun: true,
    });
    expect(dry.status).toBe(400);
    expect(await resendRows(accountId)).toBe(0);
  });

  it('refuses a since in the future, one that is no date-time with a zone, and a dryRun that is no boolean', async () => {
    const accountId = await newAccount();
    const future = await call<{ message: string[] }>('POST', `/v1/accounts/${accountId}/resends`, {
      since: new Date(Date.now() + HOUR).toISOString(),
    });
    expect(future.status).toBe(400);
    expect(future.body.message).toEqual([
      'since is in the future: it must be a time within the last 72 hours',
    ]);
    const zoneless = await call<{ message: string[] }>('POST', `/v1/accounts/${accountId}/resends`, {
      since: '2025-03-14T09:00:00',
    });
    expect(zoneless.status).toBe(400);
    expect(zoneless.body.message).toEqual([
      'since must be an ISO 8601 date-time with a time zone (2025-03-12T09:00:00Z)',
    ]);
    const dryRun = await call<{ message: string[] }>('POST', `/v1/accounts/${accountId}/resends`, {
      dryRun: 'yes',
    });
    expect(dryRun.status).toBe(400);
    expect(dryRun.body.message).toEqual(['dryRun must be true or false']);
    expect(await resendRows(accountId)).toBe(0);
  });

  it('answers 404 for an unknown account, and writes nothing', async () => {
    for (const dryRun of [false, true]) {
      const reply = await call<{ message: string }>('POST', `/v1/accounts/${UNKNOWN_ACCOUNT}/resends`, {
        dryRun,
      });
      expect(reply.status).toBe(404);
      expect(reply.body.message).toBe(`No account with id ${UNKNOWN_ACCOUNT}`);
    }
    expect(await call('POST', '/v1/accounts/not-an-id/resends', {})).toMatchObject({ status: 404 });
    expect(await resendRows(UNKNOWN_ACCOUNT)).toBe(0);
  });

  it('dryRun lists what would be resent (200), records the request as a dry run, and resends nothing', async () => {
    const accountId = await newAccount();
    const now = Date.now();
    const first = quotaExceeded(
      accountId,
      'm-first',
      ['ada@example.org', 'bob@example.org'],
      new Date(now - 2 * HOUR),
    );
    const second = quotaExceeded(accountId, 'm-second', ['cy@example.org'], new Date(now - HOUR));
    await eventLog.append([
      quotaExceeded(accountId, 'm-older', ['old@example.org'], new Date(now - 5 * HOUR)),
      second,
      first,
      quotaExceeded(randomUUID(), 'm-other-account', ['eve@example.org'], new Date(now - HOUR)),
    ]);
    // bob was delivered since: he is not resent.
    await dataSource.query(
      `INSERT INTO delivery_recipients (message_id, recipient, account_id, domain, mail_from, spool_key, size,
         smtp_utf8, eight_bit_mime, received_at, queued_event_id, state, next_attempt_at)
       VALUES ('m-first', 'bob@example.org', $1, 'example.org', 'bounces@shop.example', 'k', 2048, false, false,
         now(), $2, 'delivered', now())`,
      [accountId, randomUUID()],
    );
    const since = new Date(now - 4 * HOUR).toISOString();

    const reply = await call<DryRun>('POST', `/v1/accounts/${accountId}/resends`, { since, dryRun: true });
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({
      since,
      items: [
        { messageId: 'm-first', recipients: ['ada@example.org'], heldAt: first.occurredAt },
        { messageId: 'm-second', recipients: ['cy@example.org'], heldAt: second.occurredAt },
      ],
      total: 2,
    });

    const [requested] = await requests(accountId, 1);
    expect(requested).toMatchObject({ type: 'ResendRequested', accountId, data: { since, dryRun: true } });
    expect(await resendRows(accountId)).toBe(0);

    // The default since reaches back 72 hours: the older hold is listed too.
    const wide = await call<DryRun>('POST', `/v1/accounts/${accountId}/resends`, { dryRun: true });
    expect(wide.status).toBe(200);
    expect(near(wide.body.since, now - 72 * HOUR)).toBe(true);
    expect(wide.body.items.map((i) => i.messageId)).toEqual(['m-older', 'm-first', 'm-second']);
    expect(wide.body.total).toBe(3);
  });
});

describe('GET /v1/resends/:id', () => {
  it('a resend is accepted (202, Location, links) and its progress can be read at once', async () => {
    const accountId = await newAccount();
    const before = Date.now();
    const reply = await call<Accepted>('POST', `/v1/accounts/${accountId}/resends`);
    expect(reply.status).toBe(202);
    const { id } = reply.body;
    expect(reply.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown,
      status: 'requested',
      since: expect.any(String) as unknown,
      links: { self: `/v1/resends/${id}` },
    });
    expect(near(reply.body.since, before - 72 * HOUR)).toBe(true);
    expect(reply.headers.get('location')).toBe(`/v1/resends/${id}`);

    const progress = await call('GET', `/v1/resends/${id}`);
    expect(progress.status).toBe(200);
    expect(progress.body).toEqual({
      id,
      accountId,
      since: reply.body.since,
      requestedAt: expect.any(String) as unknown,
      status: 'requested',
      total: 0,
      resubmitted: 0,
      delivered: 0,
      overQuotaAgain: 0,
      failed: 0,
    });

    const [requested] = await requests(accountId, 1);
    expect(requested).toMatchObject({
      type: 'ResendRequested',
      accountId,
      occurredAt: progress.body.requestedAt,
      data: { resendId: id, since: reply.body.since, dryRun: false },
    });
  });

  it('answers 404 for an unknown resend', async () => {
    for (const id of [randomUUID(), 'not-an-id']) {
      const reply = await call<{ message: string }>('GET', `/v1/resends/${id}`);
      expect(reply.status).toBe(404);
      expect(reply.body.message).toBe(`No resend with id ${id}`);
    }
  });

  it('is behind the admin token', async () => {
    const response = await fetch(`${baseUrl}/v1/resends/${randomUUID()}`);
    expect(response.status).toBe(401);
  });
});
