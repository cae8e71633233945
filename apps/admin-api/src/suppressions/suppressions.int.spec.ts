import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RelayEvent } from '@relay/domain';
import { SuppressionsProjector } from '@relay/persistence';
import {
  startAdminApiTestApp,
  TEST_ADMIN_TOKEN as TOKEN,
  until,
  type AdminApiTestApp,
  type Reply,
  type RequestOptions,
} from '../testing/admin-api-test-app.js';

const UNKNOWN_ACCOUNT = '6f1c7a8e-3b5d-4e2f-9a1b-0c2d3e4f5a6b';

interface Entry {
  address: string;
  list: string;
  reason: string;
  source: string;
  createdAt: string;
}

interface Page {
  items: Entry[];
  nextCursor: string | null;
}

let api: AdminApiTestApp;
let dataSource: DataSource;
let baseUrl: string;

const call = <T = Record<string, unknown>>(
  method: string,
  path: string,
  body?: unknown,
  options: Omit<RequestOptions, 'body'> = {},
): Promise<Reply<T>> => api.request<T>(method, path, { ...options, body });

const newAccount = (): Promise<string> => api.newAccount();

const search = async (accountId: string, query = ''): Promise<Page> => {
  const reply = await call<Page>('GET', `/v1/accounts/${accountId}/suppressions?limit=500&${query}`);
  expect(reply.status).toBe(200);
  return reply.body;
};

/** Waits until the list (the read model behind GET) shows `count` listings. */
const listed = (accountId: string, count: number, query = ''): Promise<Page> =>
  until(
    () => search(accountId, query),
    (page) => page.items.length === count,
    `${count} listings`,
  );

/** The account's SuppressionAdded and SuppressionRemoved events in the log, in log order. */
async function logged(accountId: string): Promise<RelayEvent[]> {
  const rows: { payload: RelayEvent }[] = await dataSource.query(
    `SELECT payload FROM event_log
     WHERE account_id = $1 AND type IN ('SuppressionAdded', 'SuppressionRemoved')
     ORDER BY tx_id, position`,
    [accountId],
  );
  return rows.map((r) => r.payload);
}

beforeAll(async () => {
  // The path of an admin change: outbox -> relay -> event log -> projector -> the list GET reads.
  api = await startAdminApiTestApp({
    name: 'suppressions',
    eventLog: 'postgres',
    outboxRelayPollMs: 100,
    projections: [{ projection: new SuppressionsProjector() }],
    // As apps/relay must: 10 000 addresses in one JSON body exceed the parser's default 100 kB.
    jsonBodyLimit: '3mb',
  });
  ({ dataSource, baseUrl } = api);
});

afterAll(async () => {
  await api?.close();
});

describe('POST /v1/accounts/:id/suppressions', () => {
  it('adds one address: 202 at once, the SuppressionAdded in the log, the listing once projected', async () => {
    const accountId = await newAccount();
    const reply = await call('POST', `/v1/accounts/${accountId}/suppressions`, {
      list: 'unsubscribe',
      address: ' Ada@Example.ORG ',
      reason: 'Asked by phone',
    });
    expect(reply.status).toBe(202);
    expect(reply.body).toEqual({ recorded: 1, skipped: 0 });

    const page = await listed(accountId, 1);
    expect(page).toEqual({
      items: [
        {
          address: 'Ada@Example.ORG',
          list: 'unsubscribe',
          reason: 'Asked by phone',
          source: 'admin',
          createdAt: expect.any(String) as unknown,
        },
      ],
      nextCursor: null,
    });
    expect(await logged(accountId)).toEqual([
      expect.objectContaining({
        type: 'SuppressionAdded',
        accountId,
        data: { address: 'Ada@Example.ORG', list: 'unsubscribe', source: 'admin', reason: 'Asked by phone' },
      }),
    ]);
  });

  it('adds many: repeats (by key) and addresses already listed are skipped, not recorded again', async () => {
    const accountId = await newAccount();
    await call('POST', `/v1/accounts/${accountId}/suppressions`, {
      list: 'bounce',
      address: 'grace@example.net',
    });
    await listed(accountId, 1);
    const reply = await call('POST', `/v1/accounts/${accountId}/suppressions`, {
      list: 'bounce',
      addresses: [
        'grace@EXAMPLE.net',
        'ada@example.org',
        'ADA@example.org',
        'ada@Example.org',
        'bob@example.com',
      ],
    });
    expect(reply.status).toBe(202);
    expect(reply.body).toEqual({ recorded: 3, skipped: 2 });
    const page = await listed(accountId, 4);
    expect(page.items.map((e) => [e.address, e.reason]).sort()).toEqual([
      ['ADA@example.org', 'Added by a support agent'],
      ['ada@example.org', 'Added by a support agent'],
      ['bob@example.com', 'Added by a support agent'],
      ['grace@example.net', 'Added by a support agent'],
    ]);
    expect((await logged(accountId)).filter((e) => e.type === 'SuppressionAdded')).toHaveLength(4);
  });

  it('adds 10 000 addresses in one request', async () => {
    const accountId = await newAccount();
    const addresses = Array.from({ length: 10_000 }, (_, i) => `customer.${i}@bulk.example.org`);
    const reply = await call('POST', `/v1/accounts/${accountId}/suppressions`, { list: 'bounce', addresses });
    expect(reply.status).toBe(202);
    expect(reply.body).toEqual({ recorded: 10_000, skipped: 0 });
    await until(
      async () =>
        (
          await dataSource.query<{ n: number }[]>(
            `SELECT count(*)::int AS n FROM suppressions WHERE account_id = $1`,
            [accountId],
          )
        )[0]?.n,
      (n) => n === 10_000,
      'the 10 000 listings',
    );
  });

  it.each<[string, unknown, string[]]>([
    ['no list', { address: 'ada@example.org' }, ['list is required']],
    [
      'an unknown list',
      { list: 'spam', address: 'ada@example.org' },
      ['list must be one of: bounce, unsubscribe'],
    ],
    ['neither address nor addresses', { list: 'bounce' }, ['address or addresses is required']],
    [
      'both address and addresses',
      { list: 'bounce', address: 'ada@example.org', addresses: ['bob@example.com'] },
      ['give either address or addresses, not both'],
    ],
    [
      'an invalid address',
      { list: 'bounce', address: 'Ada <ada@example.org>' },
      ['address is not a valid email address: "Ada <ada@example.org>"'],
    ],
    [
      'invalid addresses among valid ones',
      { list: 'bounce', addresses: ['ada@example.org', 'not-an-address', 'bob@', 'bob@example.com'] },
      ['addresses has 2 invalid email addresses: "not-an-address", "bob@"'],
    ],
    ['an empty addresses', { list: 'bounce', addresses: [] }, ['addresses must list at least one address']],
    [
      'more than 10 000 addresses',
      { list: 'bounce', addresses: Array.from({ length: 10_001 }, (_, i) => `u${i}@example.org`) },
      ['addresses must list at most 10000 addresses; import a CSV for more'],
    ],
    [
      'a reason too long',
      { list: 'bounce', address: 'ada@example.org', reason: 'x'.repeat(1001) },
      ['reason must be shorter than or equal to 1000 characters'],
    ],
    [
      'an unknown field',
      { list: 'bounce', address: 'ada@example.org', source: 'bounce' },
      ['property source should not exist'],
    ],
  ])('answers 400 for %s, naming it, and records nothing', async (_, body, message) => {
    const accountId = await newAccount();
    const reply = await call<{ message: string[] }>('POST', `/v1/accounts/${accountId}/suppressions`, body);
    expect(reply.status).toBe(400);
    expect(reply.body.message).toEqual(message);
    expect(await logged(accountId)).toEqual([]);
  });
});

describe('GET /v1/accounts/:id/suppressions', () => {
  let accountId: string;

  beforeAll(async () => {
    accountId = await newAccount();
    for (const [list, addresses] of [
      ['bounce', ['ada@example.org', 'grace.hopper@example.net']],
      ['unsubscribe', ['Grace@Example.net', 'bob@example.com']],
      ['bounce', ['carol@example.org']],
    ] as const) {
      const reply = await call('POST', `/v1/accounts/${accountId}/suppressions`, { list, addresses });
      expect(reply.status).toBe(202);
      // One request after the other: listing times then order them.
      await listed(accountId, (await search(accountId)).items.length + addresses.length);
    }
  });

  it('lists both lists newest first, a page at a time', async () => {
    const all = (await search(accountId)).items;
    expect(all.map((e) => e.address).slice(0, 1)).toEqual(['carol@example.org']);
    expect(
      all
        .slice(3)
        .map((e) => e.address)
        .sort(),
    ).toEqual(['ada@example.org', 'grace.hopper@example.net']);
    const times = all.map((e) => e.createdAt);
    expect([...times].sort().reverse()).toEqual(times);

    const paged: Entry[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `limit=2&cursor=${cursor}` : 'limit=2';
      const page: Reply<Page> = await call<Page>('GET', `/v1/accounts/${accountId}/suppressions?${query}`);
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      paged.push(...page.body.items);
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(paged).toEqual(all);
  });

  it('searches by a case-insensitive substring of the address, within a list', async () => {
    expect((await search(accountId, 'q=GRACE')).items.map((e) => e.address).sort()).toEqual([
      'Grace@Example.net',
      'grace.hopper@example.net',
    ]);
    expect((await search(accountId, 'q=grace&list=unsubscribe')).items.map((e) => e.address)).toEqual([
      'Grace@Example.net',
    ]);
    expect((await search(accountId, 'list=bounce')).items).toHaveLength(3);
    expect(await search(accountId, 'q=nobody')).toEqual({ items: [], nextCursor: null });
  });

  it.each([
    ['an unknown list', 'list=spam', 'list must be one of: bounce, unsubscribe'],
    ['a page size of 0', 'limit=0', 'limit must not be less than 1'],
    ['a page size too large', 'limit=501', 'limit must not be greater than 500'],
    ['a made-up cursor', 'cursor=abc', 'cursor must be the nextCursor of a previous page'],
    ['an unknown parameter', 'address=ada', 'property address should not exist'],
  ])('answers 400 for %s, naming the parameter', async (_, query, message) => {
    const reply = await call<{ message: string[] }>('GET', `/v1/accounts/${accountId}/suppressions?${query}`);
    expect(reply.status).toBe(400);
    expect(reply.body.message).toEqual([message]);
  });
});

describe('DELETE /v1/accounts/:id/suppressions/:list/:address', () => {
  it('removes a listed address (its domain in any case): 202, SuppressionRemoved, then gone from the list', async () => {
    const accountId = await newAccount();
    await call('POST', `/v1/accounts/${accountId}/suppressions`, {
      list: 'bounce',
      addresses: ['Grace@Example.net', 'ada@example.org'],
    });
    await call('POST', `/v1/accounts/${accountId}/suppressions`, {
      list: 'unsubscribe',
      address: 'Grace@Example.net',
    });
    await listed(accountId, 3);

    const reply = await call(
      'DELETE',
      `/v1/accounts/${accountId}/suppressions/bounce/${encodeURIComponent('Grace@EXAMPLE.NET')}`,
    );
    expect(reply.status).toBe(202);
    expect(reply.body).toEqual({
      removed: {
        address: 'Grace@Example.net',
        list: 'bounce',
        reason: 'Added by a support agent',
        source: 'admin',
        createdAt: expect.any(String) as unknown,
      },
    });
    const page = await listed(accountId, 2);
    expect(page.items.map((e) => [e.list, e.address]).sort()).toEqual([
      ['bounce', 'ada@example.org'],
      ['unsubscribe', 'Grace@Example.net'],
    ]);
    expect((await logged(accountId)).at(-1)).toMatchObject({
      type: 'SuppressionRemoved',
      accountId,
      data: { address: 'Grace@Example.net', list: 'bounce', source: 'admin' },
    });

    // Gone now: a second removal finds nothing; the local part is compared as given.
    const again = await call('DELETE', `/v1/accounts/${accountId}/suppressions/bounce/Grace%40example.net`);
    expect(again.status).toBe(404);
    expect(again.body).toMatchObject({
      message: `Grace@example.net is not on the bounce list of account ${accountId}`,
    });
    expect(
      (await call('DELETE', `/v1/accounts/${accountId}/suppressions/bounce/ADA@example.org`)).status,
    ).toBe(404);
    const badList = await call<{ message: string[] }>(
      'DELETE',
      `/v1/accounts/${accountId}/suppressions/spam/ada@example.org`,
    );
    expect(badList.status).toBe(400);
    expect(badList.body.message).toEqual(['list must be one of: bounce, unsubscribe']);
  });
});

describe('CSV export and import', () => {
  it('exports RFC 4180 CSV, streamed, with the header; ?list= picks one list', async () => {
    const accountId = await newAccount();
    await call('POST', `/v1/accounts/${accountId}/suppressions`, {
      list: 'bounce',
      address: 'grace@example.net',
      reason: '550 5.1.1 "user unknown", says the MX',
    });
    await call('POST', `/v1/accounts/${accountId}/suppressions`, {
      list: 'unsubscribe',
      address: 'ada@example.org',
    });
    const page = await listed(accountId, 2);
    const at = (address: string): string => page.items.find((e) => e.address === address)!.createdAt;

    const reply = await call('GET', `/v1/accounts/${accountId}/suppressions.csv`);
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(reply.headers.get('content-disposition')).toBe(
      `attachment; filename="suppressions-${accountId}.csv"`,
    );
    expect(reply.text).toBe(
      'address,list,reason,source,created_at\r\n' +
        `grace@example.net,bounce,"550 5.1.1 ""user unknown"", says the MX",admin,${at('grace@example.net')}\r\n` +
        `ada@example.org,unsubscribe,Added by a support agent,admin,${at('ada@example.org')}\r\n`,
    );
    const unsubscribed = await call('GET', `/v1/accounts/${accountId}/suppressions.csv?list=unsubscribe`);
    expect(unsubscribed.text.split('\r\n').slice(1, -1)).toEqual([
      `ada@example.org,unsubscribe,Added by a support agent,admin,${at('ada@example.org')}`,
    ]);
    const empty = await call('GET', `/v1/accounts/${await newAccount()}/suppressions.csv`);
    expect(empty.text).toBe('address,list,reason,source,created_at\r\n');
  });

  it('round-trips: an export imported into another account lists the same addresses, lists and reasons', async () => {
    const from = await newAccount();
    const to = await newAccount();
    await call('POST', `/v1/accounts/${from}/suppressions`, {
      list: 'bounce',
      addresses: ['grace@example.net', 'zoë@bücher.example', '"odd,local"@example.org'],
      reason: 'line one\r\nline "two", with a comma',
    });
    await call('POST', `/v1/accounts/${from}/suppressions`, {
      list: 'unsubscribe',
      addresses: ['grace@example.net'],
    });
    await listed(from, 4);
    const exported = await call('GET', `/v1/accounts/${from}/suppressions.csv`);

    const reply = await call('POST', `/v1/accounts/${to}/suppressions/import`, exported.text, {
      contentType: 'text/csv',
    });
    expect(reply.status).toBe(202);
    expect(reply.body).toEqual({ imported: 4, skipped: 0, invalid: [], invalidCount: 0 });
    await listed(to, 4);
    const reimported = await call('GET', `/v1/accounts/${to}/suppressions.csv`);
    const withoutTimes = (csv: string): string => csv.replace(/,(admin|import),[^,\r\n]+\r\n/g, '\r\n');
    expect(withoutTimes(reimported.text)).toBe(withoutTimes(exported.text));
    expect(reimported.text).toContain(',import,');

    // The same file again: everything is listed already.
    const again = await call('POST', `/v1/accounts/${to}/suppressions/import`, exported.text, {
      contentType: 'text/csv',
    });
    expect(again.body).toEqual({ imported: 0, skipped: 4, invalid: [], invalidCount: 0 });
    expect((await logged(to)).filter((e) => e.type === 'SuppressionAdded')).toHaveLength(4);
  });

  it('imports another provider’s export onto ?list=, reporting invalid rows by line', async () => {
    const accountId = await newAccount();
    const csv =
      '\ufeffFirst Name,Email Address,Reason,Unsubscribed At\r\n' +
      'Ada,ada@example.org,"Unsubscribed, via link",2024-01-02\r\n' +
      'Nobody,not an address,,2024-01-02\r\n' +
      'Ada again,ADA@EXAMPLE.ORG,,2024-01-03\r\n' +
      '\r\n' +
      'Grace,grace@example.net,,2024-01-04\r\n';
    const reply = await call('POST', `/v1/accounts/${accountId}/suppressions/import?list=unsubscribe`, csv, {
      contentType: 'text/csv; charset=utf-8',
    });
    expect(reply.status).toBe(202);
    expect(reply.body).toEqual({
      imported: 3,
      skipped: 0,
      invalid: [{ line: 3, value: 'not an address', error: 'not a valid email address' }],
      invalidCount: 1,
    });
    const page = await listed(accountId, 3);
    expect(page.items.map((e) => [e.address, e.list, e.reason, e.source]).sort()).toEqual([
      ['ADA@EXAMPLE.ORG', 'unsubscribe', 'Imported from CSV', 'import'],
      ['ada@example.org', 'unsubscribe', 'Unsubscribed, via link', 'import'],
      ['grace@example.net', 'unsubscribe', 'Imported from CSV', 'import'],
    ]);
  });

  it('answers 415 for a body that is no CSV, 413 past 20 MB, 400 for a bad list', async () => {
    const accountId = await newAccount();
    const json = await call('POST', `/v1/accounts/${accountId}/suppressions/import`, {
      address: 'ada@example.org',
    });
    expect(json.status).toBe(415);
    const big = `address\r\n${'a'.repeat(80)}@example.org\r\n`.repeat(230_000);
    expect(big.length).toBeGreaterThan(20 * 1024 * 1024);
    const tooLarge = await call('POST', `/v1/accounts/${accountId}/suppressions/import?list=bounce`, big, {
      contentType: 'text/csv',
    });
    expect(tooLarge.status).toBe(413);
    // Without a Content-Length (chunked), the limit applies as the body arrives.
    const encoder = new TextEncoder();
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 22 * 1024 * 1024) return controller.close();
        const chunk = encoder.encode(`${'b'.repeat(80)}@example.org\r\n`.repeat(1000));
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const chunked = await fetch(`${baseUrl}/v1/accounts/${accountId}/suppressions/import?list=bounce`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/csv' },
      body: stream,
      duplex: 'half',
    });
    expect(chunked.status).toBe(413);
    expect(await chunked.json()).toMatchObject({
      message: `The CSV body is larger than ${20 * 1024 * 1024} bytes`,
    });
    const badList = await call<{ message: string[] }>(
      'POST',
      `/v1/accounts/${accountId}/suppressions/import?list=spam`,
      'a@example.org',
      {
        contentType: 'text/csv',
      },
    );
    expect(badList.status).toBe(400);
    expect(badList.body.message).toEqual(['list must be one of: bounce, unsubscribe']);
    expect(await logged(accountId)).toEqual([]);
  });
});

describe('unknown accounts and missing tokens', () => {
  const routes: [string, string, unknown?, string?][] = [
    ['GET', '/suppressions'],
    ['POST', '/suppressions', { list: 'bounce', address: 'ada@example.org' }],
    ['DELETE', '/suppressions/bounce/ada@example.org'],
    ['GET', '/suppressions.csv'],
    ['POST', '/suppressions/import?list=bounce', 'ada@example.org\r\n', 'text/csv'],
  ];

  it.each(routes)(
    '%s %s answers 404 for an unknown account, 401 without a token',
    async (method, path, body, type) => {
      for (const id of [UNKNOWN_ACCOUNT, 'not-a-uuid']) {
        const reply = await call(
          method,
          `/v1/accounts/${id}${path}`,
          body,
          type ? { contentType: type } : {},
        );
        expect(reply.status).toBe(404);
        expect(reply.body).toMatchObject({ message: `No account with id ${id}` });
      }
      const accountId = await newAccount();
      const unauthorised = await call(method, `/v1/accounts/${accountId}${path}`, body, {
        token: null,
        ...(type ? { contentType: type } : {}),
      });
      expect(unauthorised.status).toBe(401);
      expect(
        (
          await call(method, `/v1/accounts/${accountId}${path}`, body, {
            token: 'wrong',
            ...(type ? { contentType: type } : {}),
          })
        ).status,
      ).toBe(401);
    },
  );
});

describe('OpenAPI', () => {
  it('documents the routes behind the bearer token, and that the list catches up after a 202', async () => {
    const reply = await call<{
      paths: Record<
        string,
        Record<string, { security?: unknown[]; description?: string; responses?: object }>
      >;
    }>('GET', '/docs-json', undefined, { token: null });
    const paths = reply.body.paths;
    const routes = [
      paths['/v1/accounts/{id}/suppressions']?.get,
      paths['/v1/accounts/{id}/suppressions']?.post,
      paths['/v1/accounts/{id}/suppressions/{list}/{address}']?.delete,
      paths['/v1/accounts/{id}/suppressions.csv']?.get,
      paths['/v1/accounts/{id}/suppressions/import']?.post,
    ];
    for (const route of routes) expect(route?.security).toEqual([{ bearer: [] }]);
    expect(paths['/v1/accounts/{id}/suppressions']?.post?.description).toContain(
      'once the projector has applied them',
    );
    expect(Object.keys(paths['/v1/accounts/{id}/suppressions/import']?.post?.responses ?? {})).toEqual(
      expect.arrayContaining(['202', '400', '401', '404', '413', '415']),
    );
  });
});
