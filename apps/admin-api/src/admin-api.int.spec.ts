import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccountPlanChanged, RelayEvent } from '@relay/domain';
import type { EventLog } from '@relay/event-log';
import {
  startAdminApiTestApp,
  TEST_ADMIN_TOKEN as TOKEN,
  type AdminApiTestApp,
  type Reply,
} from './testing/admin-api-test-app.js';

/**
 * Stands in for the event log behind the outbox: the relay appends here. Only append and
 * isHealthy are used by the admin API.
 */
class RecordingEventLog implements EventLog {
  readonly events: RelayEvent[] = [];
  append = async (events: readonly RelayEvent[]): Promise<void> => {
    this.events.push(...events);
  };
  subscribe(): never {
    throw new Error('not used by the admin API');
  }
  readRange(): never {
    throw new Error('not used by the admin API');
  }
  isHealthy = async (): Promise<boolean> => true;
  close = async (): Promise<void> => undefined;
}

let api: AdminApiTestApp;
let baseUrl: string;
const eventLog = new RecordingEventLog();
const logLines: string[] = [];

const call = <T = Record<string, unknown>>(
  method: string,
  path: string,
  body?: unknown,
  token: string | null = TOKEN,
): Promise<Reply<T>> => api.request<T>(method, path, { body, token });

let usernames = 0;
const validAccount = (fields: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'Acme',
  username: `acme${++usernames}`,
  password: 'a long enough password',
  allowedFrom: ['@acme.example'],
  ...fields,
});

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const planEventsOf = (accountId: string): AccountPlanChanged[] =>
  eventLog.events.filter(
    (e): e is AccountPlanChanged => e.type === 'AccountPlanChanged' && e.accountId === accountId,
  );

beforeAll(async () => {
  api = await startAdminApiTestApp({ name: 'api', eventLog, outboxRelayPollMs: 200, logLines });
  baseUrl = api.baseUrl;
});

afterAll(async () => {
  await api?.close();
});

describe('admin API authentication', () => {
  it('answers 401 with a JSON message without a token', async () => {
    const reply = await call('GET', '/v1/accounts', undefined, null);
    expect(reply.status).toBe(401);
    expect(reply.body).toEqual({
      statusCode: 401,
      error: 'Unauthorized',
      message: 'Missing bearer token: send "Authorization: Bearer <admin token>"',
    });
    expect(reply.headers.get('www-authenticate')).toBe('Bearer realm="relay-admin"');
  });

  it('answers 401 with a wrong token, and with a token that is only a prefix of the right one', async () => {
    expect((await call('GET', '/v1/accounts', undefined, 'wrong')).status).toBe(401);
    expect((await call('GET', '/v1/accounts', undefined, TOKEN.slice(0, -1))).status).toBe(401);
    expect((await call('POST', '/v1/accounts', validAccount(), 'wrong')).status).toBe(401);
    const reply = await call('GET', '/v1/accounts', undefined, 'wrong');
    expect(reply.body).toMatchObject({ statusCode: 401, message: 'Invalid bearer token' });
  });

  it('leaves /health open for load balancers', async () => {
    expect((await call('GET', '/health', undefined, null)).status).toBe(200);
  });
});

describe('POST /v1/accounts', () => {
  it('creates an account: 201 with its id, the defaults, and never the password', async () => {
    const reply = await call('POST', '/v1/accounts', {
      ...validAccount({ username: 'created' }),
      allowedIps: ['203.0.113.0/24', '::ffff:198.51.100.7', '2001:DB8::/32'],
      monthlyMessageLimit: 1000,
      tracking: { opens: true },
      dkim: { domain: 'acme.example', selector: 'relay1' },
    });
    expect(reply.status).toBe(201);
    const { id, createdAt, updatedAt, ...fields } = reply.body;
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(createdAt).toBe(updatedAt);
    expect(new Date(String(createdAt)).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(fields).toEqual({
      name: 'Acme',
      username: 'created',
      allowedIps: ['203.0.113.0/24', '198.51.100.7/32', '2001:db8::/32'],
      allowedFrom: ['@acme.example'],
      monthlyMessageLimit: 1000,
      monthlyByteLimit: null,
      overageAllowed: false,
      wrapWidth: 76,
      tracking: { opens: true, clicks: false, urlTextLinks: false },
      listUnsubscribe: true,
      trackingDomain: null,
      bounceNotifications: false,
      dkim: {
        domain: 'acme.example',
        selector: 'relay1',
        ed25519: false,
        dnsRecord: {
          name: 'relay1._domainkey.acme.example',
          type: 'TXT',
          value: expect.stringMatching(/^v=DKIM1; k=rsa; p=/) as unknown,
        },
        dnsRecords: [expect.objectContaining({ name: 'relay1._domainkey.acme.example' }) as unknown],
      },
    });
    expect(JSON.stringify(reply.body)).not.toMatch(/password|scrypt/i);
    expect(logLines.join('\n')).not.toContain('a long enough password');
  });

  it('records AccountPlanChanged (without previous) for the new account', async () => {
    const reply = await call('POST', '/v1/accounts', validAccount({ monthlyByteLimit: 5_000_000_000 }));
    const id = String(reply.body.id);
    await until(() => planEventsOf(id).length === 1, 'the creation plan event');
    expect(planEventsOf(id)[0]?.data).toEqual({
      monthlyMessageLimit: null,
      monthlyByteLimit: 5_000_000_000,
      overageAllowed: false,
    });
  });

  it('answers 409 for a taken username', async () => {
    expect((await call('POST', '/v1/accounts', validAccount({ username: 'twice' }))).status).toBe(201);
    const reply = await call('POST', '/v1/accounts', validAccount({ username: 'twice' }));
    expect(reply.status).toBe(409);
    expect(reply.body).toMatchObject({ statusCode: 409, message: 'username "twice" is taken' });
  });

  it.each([
    [
      'a CIDR with host bits',
      { allowedIps: ['10.0.0.0/8', '10.1.2.3/8'] },
      'allowedIps[1]: "10.1.2.3/8" has host bits set after the /8 prefix (did you mean 10.0.0.0/8?)',
    ],
    [
      'a name instead of a CIDR',
      { allowedIps: ['office'] },
      'allowedIps[0]: "office" is not an IP address or CIDR',
    ],
    ['allowedIps not a list', { allowedIps: '10.0.0.0/8' }, 'allowedIps must be an array'],
    ['no allowedFrom', { allowedFrom: undefined }, 'allowedFrom is required'],
    ['an empty allowedFrom', { allowedFrom: [] }, 'allowedFrom must list at least one address, @domain or *'],
    [
      'an invalid allowedFrom entry',
      { allowedFrom: ['ok@acme.example', 'acme.example'] },
      'allowedFrom entries must be an address, @domain or *; not: "acme.example"',
    ],
    ['a short password', { password: 'short' }, 'password must be 8 to 1024 characters long'],
    ['no password', { password: undefined }, 'password is required'],
    ['a negative limit', { monthlyMessageLimit: -1 }, 'monthlyMessageLimit must not be less than 0'],
    ['a limit as a string', { monthlyMessageLimit: '5' }, 'monthlyMessageLimit must be an integer number'],
    ['a too wide wrap', { wrapWidth: 1000 }, 'wrapWidth must not be greater than 998'],
    ['a non-boolean tracking flag', { tracking: { opens: 'yes' } }, 'tracking.opens must be a boolean value'],
    ['an unknown tracking flag', { tracking: { pixels: true } }, 'tracking.property pixels should not exist'],
    ['an unknown field', { colour: 'blue' }, 'property colour should not exist'],
    ['a bad tracking domain', { trackingDomain: 'not a domain' }, 'trackingDomain must be a domain name'],
    [
      'a bad DKIM selector',
      { dkim: { domain: 'acme.example', selector: 'a b' } },
      'dkim.selector must be one or more DNS labels',
    ],
    ['a DKIM of null fields', { dkim: { domain: null, selector: 's' } }, 'dkim.domain is required'],
    ['a DKIM without selector', { dkim: { domain: 'acme.example' } }, 'dkim.selector is required'],
  ])('answers 400 for %s, naming the field', async (_, fields, message) => {
    const reply = await call<{ message: string[] }>('POST', '/v1/accounts', validAccount(fields));
    expect(reply.status).toBe(400);
    expect(reply.body.message).toEqual([message]);
  });

  it('answers 400 for a body that is no JSON object', async () => {
    expect((await call('POST', '/v1/accounts', ['not', 'an', 'object'])).status).toBe(400);
  });
});

describe('GET /v1/accounts', () => {
  it('returns one account, and 404 for an unknown or malformed id', async () => {
    const created = await call('POST', '/v1/accounts', validAccount());
    const reply = await call('GET', `/v1/accounts/${String(created.body.id)}`);
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual(created.body);
    expect((await call('GET', '/v1/accounts/6f1c7a8e-3b5d-4e2f-9a1b-0c2d3e4f5a6b')).status).toBe(404);
    expect((await call('GET', '/v1/accounts/nope')).status).toBe(404);
  });

  it('lists accounts oldest first, a page at a time', async () => {
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2';
      const page: Reply<{ items: { id: string; username: string }[]; nextCursor: string | null }> =
        await call('GET', `/v1/accounts${query}`);
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      all.push(...page.body.items.map((a) => a.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    const everything = await call<{ items: { id: string }[]; nextCursor: null }>(
      'GET',
      '/v1/accounts?limit=200',
    );
    expect(all).toEqual(everything.body.items.map((a) => a.id));
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBeGreaterThan(3);
  });

  it('answers 400 for a bad page size or cursor', async () => {
    expect((await call<{ message: string[] }>('GET', '/v1/accounts?limit=0')).body.message).toEqual([
      'limit must not be less than 1',
    ]);
    expect((await call<{ message: string[] }>('GET', '/v1/accounts?limit=x')).body.message).toEqual([
      'limit must be a whole number',
    ]);
    expect((await call<{ message: string[] }>('GET', '/v1/accounts?cursor=abc')).body.message).toEqual([
      'cursor must be the nextCursor of a previous page',
    ]);
  });
});

describe('PATCH /v1/accounts/:id', () => {
  it('changes limits and records AccountPlanChanged with the previous plan', async () => {
    const created = await call('POST', '/v1/accounts', validAccount({ monthlyMessageLimit: 100 }));
    const id = String(created.body.id);
    const reply = await call('PATCH', `/v1/accounts/${id}`, {
      monthlyMessageLimit: 5000,
      overageAllowed: true,
    });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ id, monthlyMessageLimit: 5000, overageAllowed: true, name: 'Acme' });
    await until(() => planEventsOf(id).length === 2, 'the plan change');
    expect(planEventsOf(id)[1]?.data).toEqual({
      monthlyMessageLimit: 5000,
      monthlyByteLimit: null,
      overageAllowed: true,
      previous: { monthlyMessageLimit: 100, monthlyByteLimit: null, overageAllowed: false },
    });
  });

  it('records nothing for a change that leaves the plan as it was', async () => {
    const created = await call('POST', '/v1/accounts', validAccount({ monthlyMessageLimit: 100 }));
    const id = String(created.body.id);
    await until(() => planEventsOf(id).length === 1, 'the creation plan event');
    const reply = await call('PATCH', `/v1/accounts/${id}`, {
      name: 'Acme Ltd',
      monthlyMessageLimit: 100,
      tracking: { clicks: true },
      dkim: null,
    });
    expect(reply.body).toMatchObject({
      name: 'Acme Ltd',
      tracking: { opens: false, clicks: true },
      dkim: null,
    });
    await sleep(500);
    expect(planEventsOf(id)).toHaveLength(1);
  });

  it('changes the password without returning it', async () => {
    const created = await call('POST', '/v1/accounts', validAccount());
    const reply = await call('PATCH', `/v1/accounts/${String(created.body.id)}`, {
      password: 'another long password',
    });
    expect(reply.status).toBe(200);
    expect(JSON.stringify(reply.body)).not.toMatch(/password|scrypt/i);
  });

  it('answers 400 for null in a field that cannot be empty, 404 for an unknown id, 409 for a taken username', async () => {
    const created = await call('POST', '/v1/accounts', validAccount());
    const id = String(created.body.id);
    const nulled = await call<{ message: string[] }>('PATCH', `/v1/accounts/${id}`, { overageAllowed: null });
    expect(nulled.status).toBe(400);
    expect(nulled.body.message).toEqual(['overageAllowed must be a boolean value']);
    const emptied = await call<{ message: string[] }>('PATCH', `/v1/accounts/${id}`, { allowedFrom: [] });
    expect(emptied.body.message).toEqual(['allowedFrom must list at least one address, @domain or *']);
    expect(
      (await call('PATCH', '/v1/accounts/6f1c7a8e-3b5d-4e2f-9a1b-0c2d3e4f5a6b', { name: 'x' })).status,
    ).toBe(404);
    expect((await call('PATCH', `/v1/accounts/${id}`, { username: 'created' })).status).toBe(409);
  });
});

describe('OpenAPI', () => {
  it('serves the document at /docs-json with every accounts route behind the bearer token', async () => {
    const reply = await call<{
      paths: Record<string, Record<string, { security?: unknown[] }>>;
      components: unknown;
    }>('GET', '/docs-json', undefined, null);
    expect(reply.status).toBe(200);
    expect(Object.keys(reply.body.paths['/v1/accounts'] ?? {}).sort()).toEqual(['get', 'post']);
    expect(Object.keys(reply.body.paths['/v1/accounts/{id}'] ?? {}).sort()).toEqual(['get', 'patch']);
    expect(reply.body.paths['/v1/accounts']?.post?.security).toEqual([{ bearer: [] }]);
    expect(JSON.stringify(reply.body.components)).toContain('allowedFrom');
  });

  it('serves Swagger UI at /docs', async () => {
    const response = await fetch(`${baseUrl}/docs`);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('swagger');
  });
});
