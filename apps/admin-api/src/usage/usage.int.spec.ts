import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, periodOf, type RelayEvent } from '@relay/domain';
import type { EventLog } from '@relay/event-log';
import { QuotaUsageProjector, type QuotaUsageReport } from '@relay/persistence';
import {
  startAdminApiTestApp,
  until,
  type AdminApiTestApp,
  type Reply,
} from '../testing/admin-api-test-app.js';

const UNKNOWN_ACCOUNT = '6f1c7a8e-3b5d-4e2f-9a1b-0c2d3e4f5a6b';

let api: AdminApiTestApp;
let eventLog: EventLog;

const call = <T = Record<string, unknown>>(
  method: string,
  path: string,
  body?: unknown,
  options: { token?: string | null } = {},
): Promise<Reply<T>> => api.request<T>(method, path, { ...options, body });

const newAccount = (plan: Record<string, unknown> = {}): Promise<string> => api.newAccount(plan);

const usage = async (accountId: string, period?: string): Promise<QuotaUsageReport> => {
  const reply = await call<QuotaUsageReport>(
    'GET',
    `/v1/accounts/${accountId}/usage${period === undefined ? '' : `?period=${period}`}`,
  );
  expect(reply.status).toBe(200);
  return reply.body;
};

/** Waits until the read model behind GET shows `messages` for the month. */
const counted = (accountId: string, period: string, messages: number): Promise<QuotaUsageReport> =>
  until(
    () => usage(accountId, period),
    (u) => u.messages === messages,
    `${messages} messages in ${period}`,
  );

const spooled = (messageId: string) => ({ mailFrom: 'app@example.com', spoolKey: `spool/${messageId}` });

/** What the policy stage appends for a message: MessageQueued for `queued`, and the others held or suppressed. */
function decided(
  accountId: string,
  period: string,
  size: number,
  queued: readonly string[],
  notCounted: { held?: readonly string[]; suppressed?: readonly string[] } = {},
): RelayEvent[] {
  const messageId = randomUUID();
  const common = { accountId, messageId, occurredAt: `${period}-10T12:00:00.000Z` };
  const flags = { smtpUtf8: false, eightBitMime: false };
  const events: RelayEvent[] = (notCounted.suppressed ?? []).map((recipient) =>
    createEvent('Suppressed', {
      ...common,
      data: { ...spooled(messageId), from: 'app@example.com', recipient, list: 'unsubscribe' },
    }),
  );
  if (notCounted.held)
    events.push(
      createEvent('QuotaExceeded', {
        ...common,
        data: {
          ...spooled(messageId),
          ...flags,
          from: 'app@example.com',
          recipients: notCounted.held,
          size,
          period,
          usage: { messages: 0, bytes: 0 },
          limits: { messages: 0, bytes: null },
        },
      }),
    );
  if (queued.length > 0)
    events.push(
      createEvent('MessageQueued', {
        ...common,
        data: {
          ...spooled(messageId),
          ...flags,
          recipients: queued,
          size,
          period,
          receivedAt: common.occurredAt,
        },
      }),
    );
  return events;
}

beforeAll(async () => {
  // The path of a decision: event log -> quota projector -> the usage GET reads.
  api = await startAdminApiTestApp({
    name: 'usage',
    eventLog: 'postgres',
    projections: [{ projection: new QuotaUsageProjector() }],
  });
  eventLog = api.eventLog;
});

afterAll(async () => {
  await api?.close();
});

describe('GET /v1/accounts/:id/usage', () => {
  it('shows messages and bytes of the month with both limits and both overages; held and suppressed recipients do not count', async () => {
    const accountId = await newAccount({
      monthlyMessageLimit: 5,
      monthlyByteLimit: 10_000,
      overageAllowed: true,
    });
    await eventLog.append([
      ...decided(
        accountId,
        '2025-03',
        1_500,
        ['a@example.org', 'b@example.org', 'c@example.org', 'd@example.org'],
        {
          suppressed: ['gone@example.org'],
        },
      ),
      ...decided(accountId, '2025-03', 1_500, ['e@example.org', 'f@example.org', 'g@example.org']),
      ...decided(accountId, '2025-03', 99_999, [], { held: ['h@example.org', 'i@example.org'] }),
      ...decided(accountId, '2025-02', 42, ['a@example.org']),
    ]);

    // The February message was appended last: once it counts, everything before it was applied.
    expect(await counted(accountId, '2025-02', 1)).toMatchObject({
      bytes: 42,
      overage: { messages: 0, bytes: 0 },
    });
    expect(await usage(accountId, '2025-03')).toEqual({
      period: '2025-03',
      messages: 7,
      bytes: 10_500,
      limits: { messages: 5, bytes: 10_000 },
      overageAllowed: true,
      overage: { messages: 2, bytes: 500 },
    });
    expect(await usage(accountId, '2025-04')).toEqual({
      period: '2025-04',
      messages: 0,
      bytes: 0,
      limits: { messages: 5, bytes: 10_000 },
      overageAllowed: true,
      overage: { messages: 0, bytes: 0 },
    });

    // A plan change shows at once: the limits are the account's current ones.
    const patched = await call('PATCH', `/v1/accounts/${accountId}`, {
      monthlyMessageLimit: null,
      monthlyByteLimit: 10_400,
    });
    expect(patched.status).toBe(200);
    expect(await usage(accountId, '2025-03')).toMatchObject({
      limits: { messages: null, bytes: 10_400 },
      overage: { messages: 0, bytes: 100 },
    });
  });

  it('shows the current UTC month when no period is given', async () => {
    const accountId = await newAccount({ monthlyMessageLimit: 1_000 });
    const period = periodOf(new Date());
    await eventLog.append(decided(accountId, period, 300, ['a@example.org', 'b@example.org']));
    await counted(accountId, period, 2);
    const reply = await usage(accountId);
    // Unless the month turned during the test.
    if (reply.period === period)
      expect(reply).toEqual({
        period,
        messages: 2,
        bytes: 600,
        limits: { messages: 1_000, bytes: null },
        overageAllowed: false,
        overage: { messages: 0, bytes: 0 },
      });
    else expect(reply.period).toBe(periodOf(new Date()));
  });

  it.each([
    ['a month without its leading zero', 'period=2025-3', 'period must be a month as YYYY-MM, e.g. 2025-03'],
    ['month 13', 'period=2025-13', 'period must be a month as YYYY-MM, e.g. 2025-03'],
    ['month 00', 'period=2025-00', 'period must be a month as YYYY-MM, e.g. 2025-03'],
    ['a date', 'period=2025-03-01', 'period must be a month as YYYY-MM, e.g. 2025-03'],
    ['no dash', 'period=202503', 'period must be a month as YYYY-MM, e.g. 2025-03'],
    ['a name', 'period=March', 'period must be a month as YYYY-MM, e.g. 2025-03'],
    ['an empty period', 'period=', 'period must be a month as YYYY-MM, e.g. 2025-03'],
    ['two periods', 'period=2025-03&period=2025-04', 'period must be a month as YYYY-MM, e.g. 2025-03'],
    ['an unknown parameter', 'month=2025-03', 'property month should not exist'],
  ])('answers 400 for %s, naming the parameter', async (_, query, message) => {
    const accountId = await newAccount();
    const reply = await call<{ message: string[] }>('GET', `/v1/accounts/${accountId}/usage?${query}`);
    expect(reply.status).toBe(400);
    expect(reply.body.message).toEqual([message]);
  });

  it('answers 404 for an unknown account, 401 without a valid token', async () => {
    for (const id of [UNKNOWN_ACCOUNT, 'not-a-uuid']) {
      const reply = await call('GET', `/v1/accounts/${id}/usage?period=2025-03`);
      expect(reply.status).toBe(404);
      expect(reply.body).toMatchObject({ message: `No account with id ${id}` });
    }
    const accountId = await newAccount();
    const missing = await call('GET', `/v1/accounts/${accountId}/usage`, undefined, { token: null });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="relay-admin"');
    expect((await call('GET', `/v1/accounts/${accountId}/usage`, undefined, { token: 'wrong' })).status).toBe(
      401,
    );
  });

  it('is documented behind the bearer token, with its period parameter and answers', async () => {
    const reply = await call<{
      paths: Record<
        string,
        Record<string, { security?: unknown[]; parameters?: { name: string }[]; responses?: object }>
      >;
    }>('GET', '/docs-json', undefined, { token: null });
    const route = reply.body.paths['/v1/accounts/{id}/usage']?.get;
    expect(route?.security).toEqual([{ bearer: [] }]);
    expect(route?.parameters?.map((p) => p.name)).toEqual(expect.arrayContaining(['id', 'period']));
    expect(Object.keys(route?.responses ?? {})).toEqual(expect.arrayContaining(['200', '400', '401', '404']));
  });
});
