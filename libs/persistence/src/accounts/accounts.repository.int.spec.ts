import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AccountPlanChanged } from '@relay/domain';
import { decryptPrivateKey } from '@relay/mime';
import { createTestDatabase, type TestDatabase } from '@relay/testing';
import { createDataSource } from '../data-source.js';
import { ACCOUNT_ENTITIES, type StoredDkimKey } from './account.entity.js';
import {
  AccountsRepository,
  InvalidAccountError,
  UsernameTakenError,
  type NewAccount,
} from './accounts.repository.js';
import { bootstrapDemoAccount } from './demo-account.js';

const DKIM_SECRET = 'test-dkim-key-secret-0123456789';
const withSecret = { dkimKeySecret: DKIM_SECRET };

let db: TestDatabase;
let dataSource: DataSource;
let accounts: AccountsRepository;
let created = 0;

function newAccount(fields: Partial<NewAccount> = {}): NewAccount {
  created++;
  return {
    name: `Account ${created}`,
    username: `user${created}`,
    password: 'secret-pw',
    allowedFrom: ['*'],
    ...fields,
  };
}

/** The outbox's events, oldest first. */
async function outbox(): Promise<AccountPlanChanged[]> {
  const rows = await dataSource.query<{ event: AccountPlanChanged }[]>(
    'SELECT event FROM outbox ORDER BY id',
  );
  return rows.map((row) => row.event);
}

beforeAll(async () => {
  db = await createTestDatabase('accounts');
  dataSource = await createDataSource({ url: db.url, entities: ACCOUNT_ENTITIES, poolSize: 4 }).initialize();
  accounts = new AccountsRepository(dataSource);
});

afterAll(async () => {
  await dataSource?.destroy();
  await db?.drop();
});

describe('AccountsRepository', () => {
  beforeEach(async () => {
    await dataSource.query('DELETE FROM outbox');
  });

  it('creates an account with the defaults, a scrypt hash and AccountPlanChanged in the same transaction', async () => {
    const account = await accounts.create(
      newAccount({ monthlyMessageLimit: 1000, allowedIps: ['192.0.2.7'] }),
    );
    expect(account).toMatchObject({
      allowedIps: ['192.0.2.7/32'],
      allowedFrom: ['*'],
      monthlyMessageLimit: 1000,
      monthlyByteLimit: null,
      overageAllowed: false,
      wrapWidth: 76,
      trackingOpens: false,
      trackingClicks: false,
      trackUrlTextLinks: false,
      listUnsubscribe: true,
      trackingDomain: null,
      bounceNotifications: false,
      dkimDomain: null,
      dkimSelector: null,
      dkimKeys: [],
    });
    expect(account.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(account.passwordHash).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(account.createdAt).toBeInstanceOf(Date);
    const [event, ...rest] = await outbox();
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      type: 'AccountPlanChanged',
      accountId: account.id,
      data: { monthlyMessageLimit: 1000, monthlyByteLimit: null, overageAllowed: false },
    });
    expect(event?.data).not.toHaveProperty('previous');
  });

  it('refuses a taken username, and leaves no event behind', async () => {
    await accounts.create(newAccount({ username: 'taken' }));
    await dataSource.query('DELETE FROM outbox');
    await expect(accounts.create(newAccount({ username: 'taken' }))).rejects.toBeInstanceOf(
      UsernameTakenError,
    );
    expect(await outbox()).toEqual([]);
  });

  it('refuses invalid allow-lists, naming the field', async () => {
    await expect(accounts.create(newAccount({ allowedIps: ['10.0.0.1/8'] }))).rejects.toThrow(
      new InvalidAccountError(
        'allowedIps[0]',
        '"10.0.0.1/8" has host bits set after the /8 prefix (did you mean 10.0.0.0/8?)',
      ),
    );
    await expect(accounts.create(newAccount({ allowedFrom: [] }))).rejects.toBeInstanceOf(
      InvalidAccountError,
    );
    await expect(accounts.create(newAccount({ allowedFrom: ['example.com'] }))).rejects.toThrow(
      /allowedFrom/,
    );
  });

  it('records a plan change with the previous plan, and nothing for other changes', async () => {
    const account = await accounts.create(newAccount({ monthlyMessageLimit: 100 }));
    await dataSource.query('DELETE FROM outbox');

    const renamed = await accounts.update(account.id, { name: 'Renamed', monthlyMessageLimit: 100 });
    expect(renamed?.name).toBe('Renamed');
    expect(renamed!.updatedAt.getTime()).toBeGreaterThanOrEqual(account.updatedAt.getTime());
    expect(await outbox()).toEqual([]);

    const raised = await accounts.update(account.id, { monthlyMessageLimit: 500, overageAllowed: true });
    expect(raised).toMatchObject({ monthlyMessageLimit: 500, overageAllowed: true });
    const events = await outbox();
    expect(events.map((e) => e.data)).toEqual([
      {
        monthlyMessageLimit: 500,
        monthlyByteLimit: null,
        overageAllowed: true,
        previous: { monthlyMessageLimit: 100, monthlyByteLimit: null, overageAllowed: false },
      },
    ]);
    expect(events[0]?.accountId).toBe(account.id);
  });

  it('clears nullable fields with null and keeps what a patch leaves out', async () => {
    const account = await accounts.create(
      newAccount({
        monthlyByteLimit: 5_000_000_000,
        trackingDomain: 'T.Example.com',
        dkim: { domain: 'Example.com', selector: 'S1' },
      }),
      withSecret,
    );
    expect(account).toMatchObject({
      monthlyByteLimit: 5_000_000_000,
      trackingDomain: 't.example.com',
      dkimDomain: 'example.com',
      dkimSelector: 's1',
    });
    const cleared = await accounts.update(account.id, {
      monthlyByteLimit: null,
      dkim: null,
      trackingDomain: null,
    });
    expect(cleared).toMatchObject({
      monthlyByteLimit: null,
      dkimDomain: null,
      dkimSelector: null,
      dkimKeys: [],
      trackingDomain: null,
    });
    expect(cleared?.name).toBe(account.name);
  });

  it('answers null for an unknown or malformed id', async () => {
    expect(await accounts.get('3d0d7e5e-0000-4000-8000-000000000000')).toBeNull();
    expect(await accounts.get('not-a-uuid')).toBeNull();
    expect(await accounts.update('3d0d7e5e-0000-4000-8000-000000000000', { name: 'x' })).toBeNull();
    expect(await accounts.update('nope', { name: 'x' })).toBeNull();
  });

  it('refuses to rename onto a taken username', async () => {
    const a = await accounts.create(newAccount());
    const b = await accounts.create(newAccount());
    await expect(accounts.update(b.id, { username: a.username })).rejects.toBeInstanceOf(UsernameTakenError);
  });
});

describe('AccountsRepository DKIM keys', () => {
  const dkim = { domain: 'Mail.Example.com', selector: 'Relay1' };
  const values = (keys: readonly StoredDkimKey[]): string[] => keys.map((k) => k.dnsRecord.value);

  it('generates an RSA key for new DKIM settings and stores it encrypted', async () => {
    const account = await accounts.create(newAccount({ dkim }), withSecret);
    expect(account).toMatchObject({ dkimDomain: 'mail.example.com', dkimSelector: 'relay1' });
    const [key, ...others] = account.dkimKeys;
    expect(others).toEqual([]);
    expect(key).toMatchObject({
      type: 'rsa',
      selector: 'relay1',
      dnsRecord: { name: 'relay1._domainkey.mail.example.com', type: 'TXT' },
    });
    expect(key?.dnsRecord.value).toMatch(/^v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+=*$/);
    expect(key?.privateKey).toMatch(/^dkimkey:v1:scrypt:/);
    expect(key?.privateKey).not.toContain('PRIVATE KEY');
    expect(await decryptPrivateKey(key!.privateKey, DKIM_SECRET)).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const [row] = await dataSource.query<{ dkim_keys: StoredDkimKey[] }[]>(
      'SELECT dkim_keys FROM accounts WHERE id = $1',
      [account.id],
    );
    expect(JSON.stringify(row?.dkim_keys)).not.toContain('PRIVATE KEY');
  });

  it('keeps the keys for the same domain and selector, adds and drops Ed25519 alone, rotates when asked', async () => {
    const account = await accounts.create(newAccount({ dkim }), withSecret);
    const rsa = values(account.dkimKeys);

    const same = await accounts.update(account.id, {
      dkim: { domain: 'mail.example.com', selector: 'relay1' },
    });
    expect(same?.dkimKeys).toEqual(account.dkimKeys);

    const withEd = await accounts.update(account.id, { dkim: { ...dkim, ed25519: true } }, withSecret);
    expect(withEd?.dkimKeys.map((k) => [k.type, k.selector])).toEqual([
      ['rsa', 'relay1'],
      ['ed25519', 'relay1-ed25519'],
    ]);
    expect(values(withEd!.dkimKeys)[0]).toBe(rsa[0]);
    expect(values(withEd!.dkimKeys)[1]).toMatch(/^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);

    // ed25519 left out: as it is.
    expect((await accounts.update(account.id, { dkim, name: 'x' }))?.dkimKeys).toEqual(withEd?.dkimKeys);

    const rotated = await accounts.update(account.id, { dkim: { ...dkim, rotate: true } }, withSecret);
    expect(rotated?.dkimKeys.map((k) => k.type)).toEqual(['rsa', 'ed25519']);
    for (const [i, value] of values(rotated!.dkimKeys).entries())
      expect(value).not.toBe(values(withEd!.dkimKeys)[i]);

    const rsaOnly = await accounts.update(account.id, { dkim: { ...dkim, ed25519: false } });
    expect(rsaOnly?.dkimKeys).toEqual(rotated?.dkimKeys.slice(0, 1));

    const moved = await accounts.update(
      account.id,
      { dkim: { domain: 'example.org', selector: 'relay1' } },
      withSecret,
    );
    expect(moved?.dkimKeys).toHaveLength(1);
    expect(moved?.dkimKeys[0]?.dnsRecord.name).toBe('relay1._domainkey.example.org');
    expect(values(moved!.dkimKeys)).not.toEqual(values(rsaOnly!.dkimKeys));

    const off = await accounts.update(account.id, { dkim: null });
    expect(off).toMatchObject({ dkimDomain: null, dkimSelector: null, dkimKeys: [] });
  });

  it('makes keys only with a secret, and refuses settings without keys in the table', async () => {
    await expect(accounts.create(newAccount({ dkim }))).rejects.toThrow(/no DKIM key secret/);
    const account = await accounts.create(newAccount());
    await expect(accounts.update(account.id, { dkim })).rejects.toThrow(/no DKIM key secret/);
    expect((await accounts.get(account.id))?.dkimDomain).toBeNull();
    await expect(
      dataSource.query(`UPDATE accounts SET dkim_domain = 'a.example', dkim_selector = 's' WHERE id = $1`, [
        account.id,
      ]),
    ).rejects.toThrow(/accounts_dkim_keys_match/);
  });

  it('ends with one key pair when concurrent patches ask for the same new settings', async () => {
    const account = await accounts.create(newAccount());
    const [a, b] = await Promise.all([
      accounts.update(account.id, { dkim }, withSecret),
      accounts.update(account.id, { dkim }, withSecret),
    ]);
    // The later one found the earlier one's keys under the row lock and kept them.
    expect(values(a!.dkimKeys)).toEqual(values(b!.dkimKeys));
    expect(values((await accounts.get(account.id))!.dkimKeys)).toEqual(values(a!.dkimKeys));
  });
});

describe('AccountsRepository.list', () => {
  it('pages oldest first with a cursor', async () => {
    await dataSource.query('DELETE FROM accounts');
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await accounts.create(newAccount()));
    const ids = made.map((a) => a.id);

    const first = await accounts.list({ limit: 2 });
    expect(first.items.map((a) => a.id)).toEqual(ids.slice(0, 2));
    const second = await accounts.list({ limit: 2, after: first.nextCursor! });
    expect(second.items.map((a) => a.id)).toEqual(ids.slice(2, 4));
    const third = await accounts.list({ limit: 2, after: second.nextCursor! });
    expect(third.items.map((a) => a.id)).toEqual(ids.slice(4));
    expect(third.nextCursor).toBeNull();
    expect((await accounts.list({ limit: 5 })).nextCursor).toBeNull();
  });
});

describe('AccountsRepository.findByClientIp', () => {
  const byIp: Record<string, string> = {};

  beforeAll(async () => {
    await dataSource.query('DELETE FROM accounts');
    const make = async (label: string, allowedIps: string[]): Promise<void> => {
      byIp[label] = (await accounts.create(newAccount({ name: label, allowedIps }))).id;
    };
    await make('wide', ['10.0.0.0/8']);
    await make('office', ['10.1.0.0/16', '2001:db8::/32']);
    await make('server', ['10.0.0.0/8', '10.1.2.0/24']);
    await make('server-later', ['10.1.2.0/24']);
    await make('v6-site', ['2001:db8:1::/48']);
    await make('host', ['::ffff:10.1.2.3']);
    await make('loopback', ['127.0.0.0/8', '::1']);
    await make('nothing', []);
  });

  it.each([
    ['10.9.9.9', 'wide'],
    ['10.1.9.9', 'office'],
    ['10.1.2.4', 'server'],
    ['10.1.2.3', 'host'],
    ['::ffff:10.1.2.3', 'host'],
    ['::ffff:10.1.2.4', 'server'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::1', 'loopback'],
    ['2001:db8:1::5', 'v6-site'],
    ['2001:DB8:2::5', 'office'],
  ])('matches %s to the longest prefix: %s', async (ip, label) => {
    const account = await accounts.findByClientIp(ip);
    expect(account?.name).toBe(label);
    expect(account?.id).toBe(byIp[label]);
  });

  it('breaks a tie between equal prefixes with the oldest account', async () => {
    expect((await accounts.findByClientIp('10.1.2.200'))?.name).toBe('server');
  });

  it.each(['192.0.2.1', '2001:db9::1', 'not an ip', ''])('matches nobody for %j', async (ip) => {
    expect(await accounts.findByClientIp(ip)).toBeNull();
  });
});

describe('AccountsRepository.verifyCredentials', () => {
  it('returns the account for the right password and null otherwise', async () => {
    const account = await accounts.create(newAccount({ username: 'alice', password: 'right password' }));
    expect((await accounts.verifyCredentials('alice', 'right password'))?.id).toBe(account.id);
    expect(await accounts.verifyCredentials('alice', 'wrong password')).toBeNull();
    expect(await accounts.verifyCredentials('Alice', 'right password')).toBeNull();
    expect(await accounts.verifyCredentials('nobody', 'right password')).toBeNull();
  });

  it('spares a repeated AUTH its scrypt', async () => {
    await accounts.create(newAccount({ username: 'often', password: 'pw-often' }));
    const timed = async (): Promise<number> => {
      const started = performance.now();
      expect(await accounts.verifyCredentials('often', 'pw-often')).not.toBeNull();
      return performance.now() - started;
    };
    const first = await timed();
    const cached = Math.min(await timed(), await timed(), await timed());
    const fresh = new AccountsRepository(dataSource);
    const uncachedStart = performance.now();
    await fresh.verifyCredentials('often', 'pw-often');
    const uncached = performance.now() - uncachedStart;
    expect(cached).toBeLessThan(Math.min(first, uncached) / 3);
  });

  it('forgets a cached success as soon as the password changes, in every process', async () => {
    const account = await accounts.create(newAccount({ username: 'rotating', password: 'old-pw' }));
    const otherProcess = new AccountsRepository(dataSource);
    expect(await accounts.verifyCredentials('rotating', 'old-pw')).not.toBeNull();
    expect(await otherProcess.verifyCredentials('rotating', 'old-pw')).not.toBeNull();

    await accounts.update(account.id, { password: 'new-pw' });
    expect(await accounts.verifyCredentials('rotating', 'old-pw')).toBeNull();
    expect(await otherProcess.verifyCredentials('rotating', 'old-pw')).toBeNull();
    expect(await otherProcess.verifyCredentials('rotating', 'new-pw')).not.toBeNull();
  });
});

describe('bootstrapDemoAccount', () => {
  it('creates the demo account only while there are no accounts', async () => {
    await dataSource.query('DELETE FROM accounts');
    const [demo, racing] = await Promise.all([
      bootstrapDemoAccount(dataSource),
      bootstrapDemoAccount(dataSource),
    ]);
    const winner = demo ?? racing;
    expect([demo, racing].filter((d) => d !== null)).toHaveLength(1);
    expect(winner).toMatchObject({ username: 'demo' });
    expect(winner?.password).toMatch(/^[A-Za-z0-9]{20}$/);
    const account = await accounts.verifyCredentials('demo', winner!.password);
    expect(account).toMatchObject({ id: winner?.id, allowedFrom: ['*'], allowedIps: [] });
    expect(await bootstrapDemoAccount(dataSource)).toBeNull();
  });
});
