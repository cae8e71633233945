import { createPrivateKey } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type * as Mime from '@relay/mime';
import { createTestDatabase, type TestDatabase } from '@relay/testing';
import { createDataSource } from '../data-source.js';
import { ACCOUNT_ENTITIES } from './account.entity.js';
import {
  AccountRenderSettingsRepository,
  DkimKeyUnreadableError,
} from './account-render-settings.repository.js';
import { AccountsRepository, type NewAccount } from './accounts.repository.js';

// The real decryption, counted: the point of the cache is to run it rarely.
const decryptions = vi.hoisted(() => ({ count: 0 }));
vi.mock('@relay/mime', async (importOriginal) => {
  const mime = await importOriginal<typeof Mime>();
  return {
    ...mime,
    decryptPrivateKey: (value: string, secret: string) => {
      decryptions.count++;
      return mime.decryptPrivateKey(value, secret);
    },
  };
});

const SECRET = 'test-dkim-key-secret-0123456789';
const TTL_MS = 30_000;

let db: TestDatabase;
let dataSource: DataSource;
let accounts: AccountsRepository;
let clock = 0;
let created = 0;

const newAccount = (fields: Partial<NewAccount> = {}): NewAccount => ({
  name: 'Render',
  username: `render${++created}`,
  password: 'secret-pw',
  allowedFrom: ['*'],
  ...fields,
});

const repository = (secret: string | (() => Promise<string>) = SECRET): AccountRenderSettingsRepository =>
  new AccountRenderSettingsRepository(dataSource, { dkimKeySecret: secret, ttlMs: TTL_MS, now: () => clock });

beforeAll(async () => {
  db = await createTestDatabase('render_settings');
  dataSource = await createDataSource({ url: db.url, entities: ACCOUNT_ENTITIES, poolSize: 4 }).initialize();
  accounts = new AccountsRepository(dataSource);
});

afterAll(async () => {
  await dataSource?.destroy();
  await db?.drop();
});

beforeEach(() => {
  decryptions.count = 0;
});

describe('AccountRenderSettingsRepository', () => {
  it('returns the defaults of an account without DKIM, and null for an unknown or malformed id', async () => {
    const account = await accounts.create(newAccount());
    const settings = repository();
    expect(await settings.get(account.id)).toEqual({
      wrapWidth: 76,
      tracking: { opens: false, clicks: false, urlTextLinks: false },
      listUnsubscribe: true,
      trackingDomain: null,
    });
    expect(await settings.get('6f1c7a8e-3b5d-4e2f-9a1b-0c2d3e4f5a6b')).toBeNull();
    expect(await settings.get('nope')).toBeNull();
  });

  it('returns the settings with the decrypted PEMs, RSA first', async () => {
    const account = await accounts.create(
      newAccount({
        wrapWidth: 0,
        trackingOpens: true,
        trackingClicks: true,
        trackUrlTextLinks: true,
        listUnsubscribe: false,
        trackingDomain: 'links.example.com',
        dkim: { domain: 'example.com', selector: 's1', ed25519: true },
      }),
      { dkimKeySecret: SECRET },
    );
    const settings = await repository().get(account.id);
    expect(settings).toMatchObject({
      wrapWidth: 0,
      tracking: { opens: true, clicks: true, urlTextLinks: true },
      listUnsubscribe: false,
      trackingDomain: 'links.example.com',
      dkim: { domain: 'example.com', selector: 's1' },
    });
    const [rsa, ed, ...more] = settings?.dkim?.privateKeys ?? [];
    expect(more).toEqual([]);
    expect(createPrivateKey(rsa!).asymmetricKeyType).toBe('rsa');
    expect(createPrivateKey(ed!).asymmetricKeyType).toBe('ed25519');
    expect(decryptions.count).toBe(2);
  });

  it('keeps settings for the TTL, shares lookups in flight, then reads the row again and decrypts only changed keys', async () => {
    const account = await accounts.create(newAccount({ dkim: { domain: 'example.com', selector: 's1' } }), {
      dkimKeySecret: SECRET,
    });
    const settings = repository();
    const [first, together] = await Promise.all([settings.get(account.id), settings.get(account.id)]);
    expect(together).toBe(first);
    expect(decryptions.count).toBe(1);

    await accounts.update(account.id, { wrapWidth: 100 });
    clock += TTL_MS - 1;
    expect(await settings.get(account.id)).toBe(first);

    clock += 1;
    const refreshed = await settings.get(account.id);
    expect(refreshed?.wrapWidth).toBe(100);
    expect(refreshed?.dkim?.privateKeys).toEqual(first?.dkim?.privateKeys);
    expect(decryptions.count).toBe(1);

    await accounts.update(
      account.id,
      { dkim: { domain: 'example.com', selector: 's1', rotate: true } },
      {
        dkimKeySecret: SECRET,
      },
    );
    clock += TTL_MS;
    const rotated = await settings.get(account.id);
    expect(rotated?.dkim?.privateKeys[0]).not.toBe(first?.dkim?.privateKeys[0]);
    expect(decryptions.count).toBe(2);

    await accounts.update(account.id, { dkim: null });
    settings.forget(account.id);
    expect((await settings.get(account.id))?.dkim).toBeUndefined();
  });

  it('evicts the least recently used account beyond maxEntries', async () => {
    const a = await accounts.create(newAccount());
    const b = await accounts.create(newAccount());
    const settings = new AccountRenderSettingsRepository(dataSource, {
      dkimKeySecret: SECRET,
      maxEntries: 1,
      now: () => clock,
    });
    const first = await settings.get(a.id);
    await settings.get(b.id);
    expect(await settings.get(a.id)).not.toBe(first);
  });

  it('refuses keys the secret does not open, and keeps no failure', async () => {
    const account = await accounts.create(newAccount({ dkim: { domain: 'example.com', selector: 's1' } }), {
      dkimKeySecret: SECRET,
    });
    let secret = 'a-different-secret-0123456789';
    const settings = repository(async () => secret);
    await expect(settings.get(account.id)).rejects.toBeInstanceOf(DkimKeyUnreadableError);
    await expect(settings.get(account.id)).rejects.toThrow(/DKIM key of account .* cannot be decrypted/);
    secret = SECRET;
    // The secret is read once; a fresh repository (a restart with the right config) reads it again.
    await expect(settings.get(account.id)).rejects.toBeInstanceOf(DkimKeyUnreadableError);
    expect((await repository(async () => secret).get(account.id))?.dkim?.privateKeys).toHaveLength(1);
  });
});
