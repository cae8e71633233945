import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, type EventOfType } from '@relay/domain';
import { createTestDatabase, type TestDatabase } from '@relay/testing';
import { ACCOUNT_ENTITIES } from '../../accounts/account.entity.js';
import { AccountsRepository, type NewAccount } from '../../accounts/accounts.repository.js';
import { createDataSource } from '../../data-source.js';
import { QuotaUsageProjector } from './quota-usage.projector.js';
import { QuotaUsageRepository } from './quota-usage.repository.js';

let db: TestDatabase;
let dataSource: DataSource;
let accounts: AccountsRepository;
let usage: QuotaUsageRepository;
let created = 0;

const account = async (plan: Partial<NewAccount>): Promise<string> =>
  (
    await accounts.create({
      name: 'Quota',
      username: `quota-${++created}`,
      password: 'secret-pw',
      allowedFrom: ['*'],
      ...plan,
    })
  ).id;

const queued = (
  accountId: string,
  period: string,
  size: number,
  count: number,
): EventOfType<'MessageQueued'> =>
  createEvent('MessageQueued', {
    accountId,
    messageId: randomUUID(),
    data: {
      recipients: Array.from({ length: count }, (_, i) => `r${i}@example.org`),
      mailFrom: 'app@example.com',
      size,
      spoolKey: 'spool/x',
      period,
      smtpUtf8: false,
      eightBitMime: false,
      receivedAt: `${period}-01T00:00:00.000Z`,
    },
  });

/** As the runner would: the projector in a transaction of its own. */
const project = (events: readonly EventOfType<'MessageQueued'>[]): Promise<void> =>
  dataSource.transaction((manager) => new QuotaUsageProjector().applyBatch(events, manager));

beforeAll(async () => {
  db = await createTestDatabase('quota_usage_repo');
  dataSource = await createDataSource({ url: db.url, entities: ACCOUNT_ENTITIES, poolSize: 4 }).initialize();
  accounts = new AccountsRepository(dataSource);
  usage = new QuotaUsageRepository(dataSource);
});

afterAll(async () => {
  await dataSource?.destroy();
  await db?.drop();
});

describe('QuotaUsageRepository.usage', () => {
  it('gives the month’s messages and bytes with the current limits and what is past them', async () => {
    const id = await account({ monthlyMessageLimit: 5, monthlyByteLimit: 10_000, overageAllowed: true });
    await project([
      queued(id, '2025-03', 1_500, 4),
      queued(id, '2025-03', 1_500, 3),
      queued(id, '2025-04', 9, 1),
    ]);
    expect(await usage.usage(id, '2025-03')).toEqual({
      period: '2025-03',
      messages: 7,
      bytes: 10_500,
      limits: { messages: 5, bytes: 10_000 },
      overageAllowed: true,
      overage: { messages: 2, bytes: 500 },
    });
    expect(await usage.usage(id, '2025-04')).toMatchObject({
      messages: 1,
      bytes: 9,
      overage: { messages: 0, bytes: 0 },
    });

    // The limits are the account's now: a raised limit leaves no overage.
    await accounts.update(id, { monthlyMessageLimit: 100, monthlyByteLimit: null });
    expect(await usage.usage(id, '2025-03')).toMatchObject({
      limits: { messages: 100, bytes: null },
      overage: { messages: 0, bytes: 0 },
    });
  });

  it('gives zeros for a month with nothing queued, and no overage when unlimited', async () => {
    const id = await account({});
    await project([queued(id, '2025-03', 3e9, 2)]);
    expect(await usage.usage(id, '2025-03')).toEqual({
      period: '2025-03',
      messages: 2,
      bytes: 6e9,
      limits: { messages: null, bytes: null },
      overageAllowed: false,
      overage: { messages: 0, bytes: 0 },
    });
    expect(await usage.usage(id, '2024-12')).toMatchObject({ messages: 0, bytes: 0 });
  });

  it('is null for an unknown account, or an id that is no UUID', async () => {
    expect(await usage.usage(randomUUID(), '2025-03')).toBeNull();
    expect(await usage.usage('not-a-uuid', '2025-03')).toBeNull();
  });
});
