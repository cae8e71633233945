import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, type RelayEvent } from '@relay/domain';
import { DeliveryReportProjector, type DeliveryReportEvent } from '@relay/persistence';
import { startAdminApiTestApp, type AdminApiTestApp, type Reply } from '../testing/admin-api-test-app.js';

interface Page {
  items: { id: string; status: string; receivedAt: string }[];
  nextCursor: string | null;
}

let api: AdminApiTestApp;
let dataSource: DataSource;
let accountId: string;

const call = <T = Record<string, unknown>>(path: string, token?: string | null): Promise<Reply<T>> =>
  api.request<T>('GET', path, { token });

/** Writes the report rows exactly as the projector does when it reads these events from the log. */
async function project(events: readonly RelayEvent[]): Promise<void> {
  const projector = new DeliveryReportProjector();
  await dataSource.transaction(async (manager) => {
    for (const event of events) await projector.apply(event as DeliveryReportEvent, manager);
  });
}

const at = (minute: number): string => new Date(Date.UTC(2025, 2, 14, 9, minute)).toISOString();

function received(messageId: string, minute: number, recipients: string[]): RelayEvent {
  return createEvent('MessageReceived', {
    accountId,
    messageId,
    occurredAt: at(minute),
    data: {
      mailFrom: 'bounces@mail.example.com',
      recipients,
      from: 'billing@example.com',
      subject: `Invoice ${messageId}`,
      headerMessageId: `${messageId}@app.example.com`,
      size: 5120,
      spoolKey: `spool/${messageId}`,
      clientIp: '203.0.113.25',
      auth: 'smtp-auth',
      username: 'example-app',
      tls: true,
      smtpUtf8: false,
      eightBitMime: false,
    },
  });
}

function queued(messageId: string, minute: number, recipients: string[]): RelayEvent {
  return createEvent('MessageQueued', {
    accountId,
    messageId,
    occurredAt: at(minute),
    data: {
      recipients,
      mailFrom: 'bounces@mail.example.com',
      size: 5120,
      spoolKey: `spool/${messageId}`,
      period: '2025-03',
      smtpUtf8: false,
      eightBitMime: false,
      receivedAt: at(minute),
    },
  });
}

function delivered(messageId: string, minute: number, recipient: string): RelayEvent {
  return createEvent('Delivered', {
    accountId,
    messageId,
    occurredAt: at(minute),
    data: {
      recipient,
      mx: 'mx1.example.org',
      remoteReply: '250 2.0.0 Ok: queued as 4XyZ',
      attempt: 1,
      latencyMs: 140,
    },
  });
}

beforeAll(async () => {
  api = await startAdminApiTestApp({ name: 'messages' });
  dataSource = api.dataSource;
  accountId = await api.newAccount({ username: 'example-app' });
});

afterAll(async () => {
  await api?.close();
});

describe('GET /v1/messages/:messageId', () => {
  it('returns the message with each recipient’s status, attempts and timeline', async () => {
    const events = [
      received('msg-report-1', 0, ['ada@example.org', 'grace@example.net']),
      queued('msg-report-1', 0, ['ada@example.org', 'grace@example.net']),
      createEvent('Deferred', {
        accountId,
        messageId: 'msg-report-1',
        occurredAt: at(1),
        data: {
          recipient: 'grace@example.net',
          remoteReply: 'connect ECONNREFUSED 192.0.2.7:25',
          attempt: 1,
          nextAttemptAt: at(6),
        },
      }),
      delivered('msg-report-1', 1, 'ada@example.org'),
    ];
    await project(events);
    const [receivedEvent, queuedEvent, deferredEvent, deliveredEvent] = events;

    const reply = await call('/v1/messages/msg-report-1');
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({
      id: 'msg-report-1',
      accountId,
      mailFrom: 'bounces@mail.example.com',
      from: 'billing@example.com',
      subject: 'Invoice msg-report-1',
      size: 5120,
      recipientsCount: 2,
      status: 'deferred',
      receivedAt: at(0),
      updatedAt: at(1),
      recipients: [
        {
          recipient: 'ada@example.org',
          status: 'delivered',
          attempts: 1,
          lastReply: '250 2.0.0 Ok: queued as 4XyZ',
          mx: 'mx1.example.org',
          nextAttemptAt: null,
          bounceClass: null,
          statusCode: null,
          timeline: [
            { at: at(0), type: 'MessageReceived', eventId: receivedEvent!.id },
            { at: at(0), type: 'MessageQueued', eventId: queuedEvent!.id },
            {
              at: at(1),
              type: 'Delivered',
              eventId: deliveredEvent!.id,
              reply: '250 2.0.0 Ok: queued as 4XyZ',
              mx: 'mx1.example.org',
              attempt: 1,
            },
          ],
        },
        {
          recipient: 'grace@example.net',
          status: 'deferred',
          attempts: 1,
          lastReply: 'connect ECONNREFUSED 192.0.2.7:25',
          mx: null,
          nextAttemptAt: at(6),
          bounceClass: null,
          statusCode: null,
          timeline: [
            { at: at(0), type: 'MessageReceived', eventId: receivedEvent!.id },
            { at: at(0), type: 'MessageQueued', eventId: queuedEvent!.id },
            {
              at: at(1),
              type: 'Deferred',
              eventId: deferredEvent!.id,
              reply: 'connect ECONNREFUSED 192.0.2.7:25',
              attempt: 1,
              nextAttemptAt: at(6),
            },
          ],
        },
      ],
    });
  });

  it('answers 404 with a message for an unknown message, and 401 without a token', async () => {
    const missing = await call('/v1/messages/no-such-message');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({
      statusCode: 404,
      error: 'Not Found',
      message: 'No message with id no-such-message',
    });
    expect((await call('/v1/messages/msg-report-1', null)).status).toBe(401);
  });
});

describe('GET /v1/accounts/:id/messages', () => {
  const ids = ['msg-list-a', 'msg-list-b', 'msg-list-c', 'msg-list-d', 'msg-list-e'];

  beforeAll(async () => {
    await project(
      ids.flatMap((id, i) => {
        const minute = 10 + i;
        const flow = [received(id, minute, ['ada@example.org']), queued(id, minute, ['ada@example.org'])];
        return i % 2 === 0 ? [...flow, delivered(id, minute + 1, 'ada@example.org')] : flow;
      }),
    );
  });

  it('lists the account’s messages newest first, a page at a time', async () => {
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `limit=2&cursor=${cursor}` : 'limit=2';
      const page: Reply<Page> = await call<Page>(`/v1/accounts/${accountId}/messages?${query}`);
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      all.push(...page.body.items.map((m) => m.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(all).toEqual([...ids].reverse().concat('msg-report-1'));

    const first = await call<Page>(`/v1/accounts/${accountId}/messages?limit=1`);
    expect(first.body.items).toEqual([
      {
        id: 'msg-list-e',
        accountId,
        mailFrom: 'bounces@mail.example.com',
        from: 'billing@example.com',
        subject: 'Invoice msg-list-e',
        size: 5120,
        recipientsCount: 1,
        status: 'delivered',
        receivedAt: at(14),
        updatedAt: at(15),
      },
    ]);
  });

  it('filters by status and by since', async () => {
    const delivered = await call<Page>(`/v1/accounts/${accountId}/messages?status=delivered`);
    expect(delivered.body.items.map((m) => m.id)).toEqual(['msg-list-e', 'msg-list-c', 'msg-list-a']);
    const queuedOnly = await call<Page>(`/v1/accounts/${accountId}/messages?status=queued`);
    expect(queuedOnly.body.items.map((m) => m.id)).toEqual(['msg-list-d', 'msg-list-b']);
    const since = await call<Page>(
      `/v1/accounts/${accountId}/messages?since=${encodeURIComponent('2025-03-14T10:13:00+01:00')}`,
    );
    expect(since.body.items.map((m) => m.id)).toEqual(['msg-list-e', 'msg-list-d']);
    const sinceDay = await call<Page>(`/v1/accounts/${accountId}/messages?since=2025-03-15`);
    expect(sinceDay.body).toEqual({ items: [], nextCursor: null });
  });

  it.each([
    [
      'an unknown status',
      'status=sent',
      'status must be one of: queued, deferred, delivered, bounced, partially-delivered, suppressed, held, denied',
    ],
    [
      'a since that is no date',
      'since=yesterday',
      'since must be an ISO 8601 date (2025-03-14) or date-time with a time zone (2025-03-14T09:00:00Z)',
    ],
    [
      'a since without a time zone',
      'since=2025-03-14T09:00:00',
      'since must be an ISO 8601 date (2025-03-14) or date-time with a time zone (2025-03-14T09:00:00Z)',
    ],
    [
      'a since on a day that does not exist',
      'since=2025-02-30',
      'since must be an ISO 8601 date (2025-03-14) or date-time with a time zone (2025-03-14T09:00:00Z)',
    ],
    ['a page size of 0', 'limit=0', 'limit must not be less than 1'],
    ['a page size that is no number', 'limit=ten', 'limit must be a whole number'],
    ['a made-up cursor', 'cursor=abc', 'cursor must be the nextCursor of a previous page'],
    ['an unknown parameter', 'state=delivered', 'property state should not exist'],
  ])('answers 400 for %s, naming the parameter', async (_, query, message) => {
    const reply = await call<{ message: string[] }>(`/v1/accounts/${accountId}/messages?${query}`);
    expect(reply.status).toBe(400);
    expect(reply.body.message).toEqual([message]);
  });

  it('answers 404 for an unknown account, and 401 without a token', async () => {
    const reply = await call('/v1/accounts/6f1c7a8e-3b5d-4e2f-9a1b-0c2d3e4f5a6b/messages');
    expect(reply.status).toBe(404);
    expect(reply.body).toMatchObject({ message: 'No account with id 6f1c7a8e-3b5d-4e2f-9a1b-0c2d3e4f5a6b' });
    expect((await call(`/v1/accounts/${accountId}/messages`, null)).status).toBe(401);
  });
});

describe('OpenAPI', () => {
  it('documents both routes behind the bearer token, with the statuses', async () => {
    const reply = await call<{
      paths: Record<string, Record<string, { security?: unknown[]; parameters?: { name: string }[] }>>;
      components: unknown;
    }>('/docs-json', null);
    const one = reply.body.paths['/v1/messages/{messageId}']?.get;
    const list = reply.body.paths['/v1/accounts/{id}/messages']?.get;
    expect(one?.security).toEqual([{ bearer: [] }]);
    expect(list?.security).toEqual([{ bearer: [] }]);
    expect(list?.parameters?.map((p) => p.name).sort()).toEqual(['cursor', 'id', 'limit', 'since', 'status']);
    expect(JSON.stringify(reply.body.components)).toContain('partially-delivered');
    expect(JSON.stringify(reply.body.components)).toContain('nextAttemptAt');
  });
});
