import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dkimKeySecret } from '@relay/config';
import { decryptPrivateKey } from '@relay/mime';
import { startAdminApiTestApp, type AdminApiTestApp } from '../testing/admin-api-test-app.js';

interface DnsRecord {
  name: string;
  type: string;
  value: string;
}

interface Dkim {
  domain: string;
  selector: string;
  ed25519: boolean;
  dnsRecord: DnsRecord;
  dnsRecords: DnsRecord[];
}

interface Account {
  id: string;
  wrapWidth: number;
  tracking: { opens: boolean; clicks: boolean; urlTextLinks: boolean };
  listUnsubscribe: boolean;
  trackingDomain: string | null;
  bounceNotifications: boolean;
  dkim: Dkim | null;
  message?: string[];
}

interface StoredKey {
  type: string;
  selector: string;
  privateKey: string;
  dnsRecord: DnsRecord;
  createdAt: string;
}

let api: AdminApiTestApp;
let dataSource: DataSource;
let dataDir: string;
const logLines: string[] = [];
/** Every response body of this file, to look for private keys in. */
const bodies: string[] = [];

async function call<T = Account>(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const reply = await api.request<T>(method, path, { body });
  bodies.push(reply.text);
  return reply;
}

let usernames = 0;
const newAccount = (fields: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'Acme',
  username: `dkim${++usernames}`,
  password: 'a long enough password',
  allowedFrom: ['@acme.example'],
  ...fields,
});

async function create(fields: Record<string, unknown> = {}): Promise<Account> {
  const reply = await call('POST', '/v1/accounts', newAccount(fields));
  expect(reply.status).toBe(201);
  return reply.body;
}

async function storedKeys(id: string): Promise<StoredKey[]> {
  const [row] = await dataSource.query<{ dkim_keys: StoredKey[] }[]>(
    'SELECT dkim_keys FROM accounts WHERE id = $1',
    [id],
  );
  return row?.dkim_keys ?? [];
}

/** The secret the API generated under the data dir at its first DKIM write. */
const secret = (): Promise<string> => dkimKeySecret({ dataDir, dkimKeySecret: undefined });

/** The p= of a TXT record as a verifier reads it: the key it must verify signatures with. */
function publicKeyOf(record: DnsRecord): Buffer {
  const p = /(?:^|;\s*)p=([A-Za-z0-9+/=]+)/.exec(record.value)?.[1];
  if (!p) throw new Error(`no p= in ${record.value}`);
  return Buffer.from(p, 'base64');
}

/** The public half of a PEM private key in DKIM's form (RSA: SPKI DER; Ed25519: the raw 32 bytes). */
function dkimPublicKeyOf(pem: string): Buffer {
  const publicKey = createPublicKey(createPrivateKey(pem));
  if (publicKey.asymmetricKeyType === 'ed25519') {
    return Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  }
  return publicKey.export({ type: 'spki', format: 'der' });
}

beforeAll(async () => {
  // No DKIM_KEY_SECRET: the API generates one under the data dir.
  api = await startAdminApiTestApp({ name: 'accounts', logLines });
  ({ dataSource, dataDir } = api);
});

afterAll(async () => {
  await api?.close();
});

describe('DKIM through /v1/accounts', () => {
  it('creates an account with DKIM: 201 with the RSA TXT record, the same on GET and in the list', async () => {
    const account = await create({ dkim: { domain: 'Acme.Example', selector: 'Relay1' } });
    expect(account.dkim).toEqual({
      domain: 'acme.example',
      selector: 'relay1',
      ed25519: false,
      dnsRecord: {
        name: 'relay1._domainkey.acme.example',
        type: 'TXT',
        value: expect.stringMatching(/^v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+=*$/) as unknown,
      },
      dnsRecords: [account.dkim?.dnsRecord],
    });
    // An RSA-2048 SubjectPublicKeyInfo.
    expect(publicKeyOf(account.dkim!.dnsRecord)).toHaveLength(294);
    expect((await call('GET', `/v1/accounts/${account.id}`)).body).toEqual(account);
    const list = await call<{ items: Account[] }>('GET', '/v1/accounts?limit=200');
    expect(list.body.items.find((a) => a.id === account.id)).toEqual(account);
    expect(logLines.some((line) => line.includes('dkim keys generated') && line.includes(account.id))).toBe(
      true,
    );
  });

  it('adds an Ed25519 key on request, published under <selector>-ed25519', async () => {
    const account = await create({ dkim: { domain: 'acme.example', selector: 's2024', ed25519: true } });
    expect(account.dkim?.ed25519).toBe(true);
    expect(account.dkim?.dnsRecord.name).toBe('s2024._domainkey.acme.example');
    expect(account.dkim?.dnsRecords.map((r) => r.name)).toEqual([
      's2024._domainkey.acme.example',
      's2024-ed25519._domainkey.acme.example',
    ]);
    expect(account.dkim?.dnsRecords[0]).toEqual(account.dkim?.dnsRecord);
    expect(account.dkim?.dnsRecords[1]?.value).toMatch(/^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
  });

  it('stores the private keys only encrypted, with the secret kept under the data dir', async () => {
    const account = await create({ dkim: { domain: 'acme.example', selector: 'enc', ed25519: true } });
    const keys = await storedKeys(account.id);
    expect(keys.map((k) => [k.type, k.selector, k.dnsRecord])).toEqual([
      ['rsa', 'enc', account.dkim?.dnsRecords[0]],
      ['ed25519', 'enc-ed25519', account.dkim?.dnsRecords[1]],
    ]);
    const [raw] = await dataSource.query<{ text: string }[]>(
      'SELECT dkim_keys::text AS text FROM accounts WHERE id = $1',
      [account.id],
    );
    expect(raw?.text).not.toContain('PRIVATE KEY');
    expect((await readFile(join(dataDir, 'dkim-key-secret'), 'utf8')).trim()).toBe(await secret());
    for (const [i, key] of keys.entries()) {
      expect(key.privateKey).toMatch(/^dkimkey:v1:scrypt:/);
      await expect(decryptPrivateKey(key.privateKey, 'not-the-secret-0123456789')).rejects.toThrow();
      const pem = await decryptPrivateKey(key.privateKey, await secret());
      // The published record is the public half of the stored key.
      expect(dkimPublicKeyOf(pem).equals(publicKeyOf(account.dkim!.dnsRecords[i]!))).toBe(true);
    }
  });

  it('keeps the keys on a PATCH with the same domain and selector, rotates on request, removes them with null', async () => {
    const account = await create({ dkim: { domain: 'acme.example', selector: 'keep' } });
    const original = account.dkim!;

    const same = await call('PATCH', `/v1/accounts/${account.id}`, {
      dkim: { domain: 'ACME.example', selector: 'Keep' },
      name: 'Acme Ltd',
    });
    expect(same.status).toBe(200);
    expect(same.body.dkim).toEqual(original);

    const withEd = await call('PATCH', `/v1/accounts/${account.id}`, {
      dkim: { domain: 'acme.example', selector: 'keep', ed25519: true },
    });
    expect(withEd.body.dkim?.dnsRecord).toEqual(original.dnsRecord);
    expect(withEd.body.dkim?.dnsRecords).toHaveLength(2);

    const rotated = await call('PATCH', `/v1/accounts/${account.id}`, {
      dkim: { domain: 'acme.example', selector: 'keep', rotate: true },
    });
    expect(rotated.status).toBe(200);
    expect(rotated.body.dkim).toMatchObject({ domain: 'acme.example', selector: 'keep', ed25519: true });
    expect(rotated.body.dkim?.dnsRecord.name).toBe(original.dnsRecord.name);
    expect(rotated.body.dkim?.dnsRecord.value).not.toBe(original.dnsRecord.value);
    expect(rotated.body.dkim?.dnsRecords[1]?.value).not.toBe(withEd.body.dkim?.dnsRecords[1]?.value);

    const moved = await call('PATCH', `/v1/accounts/${account.id}`, {
      dkim: { domain: 'acme.example', selector: 'next', ed25519: false },
    });
    expect(moved.body.dkim?.dnsRecords.map((r) => r.name)).toEqual(['next._domainkey.acme.example']);
    expect(moved.body.dkim?.dnsRecord.value).not.toBe(rotated.body.dkim?.dnsRecord.value);

    const removed = await call('PATCH', `/v1/accounts/${account.id}`, { dkim: null });
    expect(removed.status).toBe(200);
    expect(removed.body.dkim).toBeNull();
    expect(await storedKeys(account.id)).toEqual([]);
    expect((await call('GET', `/v1/accounts/${account.id}`)).body.dkim).toBeNull();
  });

  it('leaves the keys alone on a PATCH without dkim', async () => {
    const account = await create({ dkim: { domain: 'acme.example', selector: 'alone' } });
    const before = await storedKeys(account.id);
    const reply = await call('PATCH', `/v1/accounts/${account.id}`, { wrapWidth: 0 });
    expect(reply.body.dkim).toEqual(account.dkim);
    expect(await storedKeys(account.id)).toEqual(before);
  });

  it.each([
    [
      'a DKIM domain that is no domain',
      { domain: 'acme', selector: 's1' },
      'dkim.domain must be a domain name',
    ],
    [
      'a DKIM domain in Unicode',
      { domain: 'bücher.example', selector: 's1' },
      'dkim.domain must be a domain name in ASCII (an IDN as xn--...)',
    ],
    [
      'a too long selector',
      { domain: 'acme.example', selector: 's'.repeat(56) },
      'dkim.selector must be at most 55 characters long',
    ],
    [
      'a non-boolean ed25519',
      { domain: 'acme.example', selector: 's1', ed25519: 'yes' },
      'dkim.ed25519 must be a boolean value',
    ],
    [
      'a non-boolean rotate',
      { domain: 'acme.example', selector: 's1', rotate: 1 },
      'dkim.rotate must be a boolean value',
    ],
    [
      'a private key',
      { domain: 'acme.example', selector: 's1', privateKey: 'x' },
      'dkim.property privateKey should not exist',
    ],
  ])('answers 400 for %s', async (_, dkim, message) => {
    const reply = await call('POST', '/v1/accounts', newAccount({ dkim }));
    expect(reply.status).toBe(400);
    expect(reply.body.message).toEqual([message]);
  });
});

describe('rendering settings through /v1/accounts', () => {
  it('creates with the defaults: wrap 76, no tracking, List-Unsubscribe on, no tracking domain, no bounce mails', async () => {
    const account = await create();
    expect(account).toMatchObject({
      wrapWidth: 76,
      tracking: { opens: false, clicks: false, urlTextLinks: false },
      listUnsubscribe: true,
      trackingDomain: null,
      bounceNotifications: false,
      dkim: null,
    });
  });

  it('round-trips tracking, listUnsubscribe, trackingDomain, wrapWidth and bounceNotifications', async () => {
    const account = await create({
      wrapWidth: 998,
      tracking: { opens: true, clicks: true, urlTextLinks: true },
      listUnsubscribe: false,
      trackingDomain: 'Links.Acme.Example',
      bounceNotifications: true,
    });
    const expected = {
      wrapWidth: 998,
      tracking: { opens: true, clicks: true, urlTextLinks: true },
      listUnsubscribe: false,
      trackingDomain: 'links.acme.example',
      bounceNotifications: true,
    };
    expect(account).toMatchObject(expected);
    expect((await call('GET', `/v1/accounts/${account.id}`)).body).toMatchObject(expected);

    const patched = await call('PATCH', `/v1/accounts/${account.id}`, {
      wrapWidth: 0,
      tracking: { urlTextLinks: false },
      listUnsubscribe: true,
      trackingDomain: null,
      bounceNotifications: false,
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({
      wrapWidth: 0,
      // Tracking flags left out keep their values.
      tracking: { opens: true, clicks: true, urlTextLinks: false },
      listUnsubscribe: true,
      trackingDomain: null,
      bounceNotifications: false,
    });

    // The columns the delivery stage reads (AccountRenderSettingsRepository).
    const [row] = await dataSource.query<Record<string, unknown>[]>(
      `SELECT wrap_width, tracking_opens, tracking_clicks, track_url_text_links, list_unsubscribe,
              tracking_domain, bounce_notifications
         FROM accounts WHERE id = $1`,
      [account.id],
    );
    expect(row).toEqual({
      wrap_width: 0,
      tracking_opens: true,
      tracking_clicks: true,
      track_url_text_links: false,
      list_unsubscribe: true,
      tracking_domain: null,
      bounce_notifications: false,
    });
  });

  it.each([
    ['a negative wrap width', { wrapWidth: -1 }, 'wrapWidth must not be less than 0'],
    ['a fractional wrap width', { wrapWidth: 7.5 }, 'wrapWidth must be an integer number'],
    ['a non-boolean listUnsubscribe', { listUnsubscribe: 'yes' }, 'listUnsubscribe must be a boolean value'],
    ['null listUnsubscribe', { listUnsubscribe: null }, 'listUnsubscribe must be a boolean value'],
    [
      'a non-boolean urlTextLinks',
      { tracking: { urlTextLinks: 1 } },
      'tracking.urlTextLinks must be a boolean value',
    ],
    [
      'a URL as tracking domain',
      { trackingDomain: 'https://links.acme.example' },
      'trackingDomain must be a domain name',
    ],
    [
      'a port on the tracking domain',
      { trackingDomain: 'links.acme.example:8080' },
      'trackingDomain must be a domain name',
    ],
    [
      'an IP address as tracking domain',
      { trackingDomain: '192.0.2.1' },
      'trackingDomain must be a domain name',
    ],
    [
      'a Unicode tracking domain',
      { trackingDomain: 'liens.bücher.example' },
      'trackingDomain must be a domain name in ASCII (an IDN as xn--...)',
    ],
    [
      'a too long tracking domain',
      { trackingDomain: `${'a'.repeat(60)}.`.repeat(5) + 'example' },
      'trackingDomain must be at most 253 characters long',
    ],
    [
      'a non-boolean bounceNotifications',
      { bounceNotifications: 'no' },
      'bounceNotifications must be a boolean value',
    ],
  ])('answers 400 for %s', async (_, fields, message) => {
    const reply = await call('POST', '/v1/accounts', newAccount(fields));
    expect(reply.status).toBe(400);
    expect(reply.body.message).toEqual([message]);
  });

  it('accepts an IDN tracking domain in its xn-- form', async () => {
    const account = await create({ trackingDomain: 'links.xn--bcher-kva.example' });
    expect(account.trackingDomain).toBe('links.xn--bcher-kva.example');
  });
});

describe('OpenAPI of the accounts settings', () => {
  it('documents the DKIM input and the TXT records, and no private key', async () => {
    const reply = await call<{
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    }>('GET', '/docs-json');
    const schemas = reply.body.components.schemas;
    expect(Object.keys(schemas.DkimDto?.properties ?? {}).sort()).toEqual([
      'domain',
      'ed25519',
      'rotate',
      'selector',
    ]);
    expect(Object.keys(schemas.DkimResponseDto?.properties ?? {}).sort()).toEqual([
      'dnsRecord',
      'dnsRecords',
      'domain',
      'ed25519',
      'selector',
    ]);
    expect(Object.keys(schemas.DnsRecordDto?.properties ?? {}).sort()).toEqual(['name', 'type', 'value']);
    expect(Object.keys(schemas.TrackingDto?.properties ?? {}).sort()).toEqual([
      'clicks',
      'opens',
      'urlTextLinks',
    ]);
    expect(schemas.CreateAccountDto?.properties).toHaveProperty('listUnsubscribe', {
      type: 'boolean',
      default: true,
      description: expect.stringContaining('RFC 8058') as unknown,
    });
    expect(schemas.AccountResponseDto?.properties).toHaveProperty('listUnsubscribe');
    expect(JSON.stringify(schemas)).not.toMatch(/privateKey/i);
  });
});

describe('private keys', () => {
  // Last in the file: it looks back at every response and log line of the tests above.
  it('were in no response and no log line', () => {
    expect(bodies.length).toBeGreaterThan(20);
    for (const text of [...bodies, ...logLines]) expect(text).not.toMatch(/PRIVATE KEY|dkimkey:/);
  });
});
