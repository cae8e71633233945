import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, type SuppressionList, type SuppressionSource } from '@relay/domain';
import { createTestDatabase, type TestDatabase } from '@relay/testing';
import { createDataSource } from '../../data-source.js';
import { SuppressionsProjector, type SuppressionEvent } from './suppressions.projector.js';
import {
  isSuppressionCursor,
  SuppressionsRepository,
  type SuppressionEntry,
} from './suppressions.repository.js';

const at = (s: number): string => new Date(Date.UTC(2025, 2, 14, 9, 0, 0) + s * 1000).toISOString();

function added(
  accountId: string,
  s: number,
  address: string,
  list: SuppressionList,
  source: SuppressionSource = 'admin',
): SuppressionEvent {
  return createEvent('SuppressionAdded', {
    accountId,
    occurredAt: at(s),
    data: { address, list, source, reason: `reason ${s}` },
  });
}

let db: TestDatabase;
let dataSource: DataSource;
let repository: SuppressionsRepository;

/** Writes the rows exactly as the projector does when it reads these events from the log. */
async function project(events: readonly SuppressionEvent[]): Promise<void> {
  await dataSource.transaction((manager) => new SuppressionsProjector().applyBatch(events, manager));
}

const entry = (s: number, address: string, list: SuppressionList, source: SuppressionSource = 'admin') => ({
  address,
  list,
  reason: `reason ${s}`,
  source,
  createdAt: at(s),
});

beforeAll(async () => {
  db = await createTestDatabase('suppressions_repository');
  dataSource = await createDataSource({ url: db.url, poolSize: 4 }).initialize();
  repository = new SuppressionsRepository(dataSource);
});

afterAll(async () => {
  await dataSource?.destroy();
  await db?.drop();
});

describe('SuppressionsRepository.isListed', () => {
  it('finds an address whatever the case of its domain, but only with its local part as given', async () => {
    const accountId = randomUUID();
    await project([
      added(accountId, 1, 'Ann.Smith@Example.COM', 'bounce', 'bounce'),
      added(accountId, 2, 'bob@xn--bcher-kva.example', 'unsubscribe', 'unsubscribe'),
      added(accountId, 3, 'both@example.org', 'unsubscribe'),
      added(accountId, 4, 'both@example.org', 'bounce'),
      added(randomUUID(), 5, 'other-account@example.org', 'bounce'),
    ]);
    const listed = await repository.isListed(accountId, [
      'Ann.Smith@example.com',
      'Ann.Smith@EXAMPLE.COM.',
      'ann.smith@example.com',
      'ANN.SMITH@example.com',
      'bob@Bücher.example',
      'both@EXAMPLE.org',
      'other-account@example.org',
      'nobody@example.com',
    ]);
    expect(listed).toEqual(
      new Map([
        ['Ann.Smith@example.com', 'bounce'],
        ['Ann.Smith@EXAMPLE.COM.', 'bounce'],
        ['bob@Bücher.example', 'unsubscribe'],
        // On both lists: the Bounce list is named.
        ['both@EXAMPLE.org', 'bounce'],
      ]),
    );
    expect(await repository.isListed(accountId, [])).toEqual(new Map());
  });
});

describe('SuppressionsRepository.search', () => {
  const accountId = randomUUID();

  beforeAll(async () => {
    await project([
      added(accountId, 10, 'ada@example.org', 'bounce', 'bounce'),
      added(accountId, 11, 'Grace.Hopper@Example.NET', 'unsubscribe', 'unsubscribe'),
      added(accountId, 12, 'grace@example.org', 'bounce', 'import'),
      // Three listings made at the same moment (an import): the key, then the list, order them.
      added(accountId, 13, 'tie-b@example.org', 'bounce', 'import'),
      added(accountId, 13, 'tie-a@example.org', 'bounce', 'import'),
      added(accountId, 13, 'tie-a@example.org', 'unsubscribe', 'import'),
      added(accountId, 14, '100%_sure@example.org', 'bounce'),
    ]);
  });

  const newestFirst = [
    entry(14, '100%_sure@example.org', 'bounce'),
    entry(13, 'tie-b@example.org', 'bounce', 'import'),
    entry(13, 'tie-a@example.org', 'unsubscribe', 'import'),
    entry(13, 'tie-a@example.org', 'bounce', 'import'),
    entry(12, 'grace@example.org', 'bounce', 'import'),
    entry(11, 'Grace.Hopper@Example.NET', 'unsubscribe', 'unsubscribe'),
    entry(10, 'ada@example.org', 'bounce', 'bounce'),
  ];

  it('lists both lists newest first, a page at a time, never repeating or skipping a listing', async () => {
    expect(await repository.search(accountId, { limit: 100 })).toEqual({
      items: newestFirst,
      nextCursor: null,
    });
    const paged: SuppressionEntry[] = [];
    let cursor: string | undefined;
    do {
      const page = await repository.search(accountId, { limit: 2, ...(cursor ? { cursor } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(2);
      paged.push(...page.items);
      cursor = page.nextCursor ?? undefined;
      if (cursor) expect(isSuppressionCursor(cursor)).toBe(true);
    } while (cursor);
    expect(paged).toEqual(newestFirst);
  });

  it('filters by list and by a case-insensitive substring of the address, % and _ taken literally', async () => {
    const bounce = await repository.search(accountId, { list: 'bounce', limit: 100 });
    expect(bounce.items).toEqual(newestFirst.filter((e) => e.list === 'bounce'));
    const grace = await repository.search(accountId, { q: 'GRACE', limit: 100 });
    expect(grace.items.map((e) => e.address)).toEqual(['grace@example.org', 'Grace.Hopper@Example.NET']);
    const net = await repository.search(accountId, { q: 'example.net', list: 'unsubscribe', limit: 100 });
    expect(net.items.map((e) => e.address)).toEqual(['Grace.Hopper@Example.NET']);
    expect((await repository.search(accountId, { q: '%_', limit: 100 })).items).toEqual([newestFirst[0]]);
    expect((await repository.search(accountId, { q: 'a_a', limit: 100 })).items).toEqual([]);
    const firstTie = await repository.search(accountId, { q: 'tie', limit: 1 });
    const secondTie = await repository.search(accountId, {
      q: 'tie',
      limit: 5,
      cursor: firstTie.nextCursor!,
    });
    expect([...firstTie.items, ...secondTie.items]).toEqual(newestFirst.slice(1, 4));
  });

  it('gives an empty page for a made-up cursor, and nothing of another account', async () => {
    expect(isSuppressionCursor('abc')).toBe(false);
    expect(await repository.search(accountId, { limit: 10, cursor: 'abc' })).toEqual({
      items: [],
      nextCursor: null,
    });
    expect(await repository.search(randomUUID(), { limit: 10 })).toEqual({ items: [], nextCursor: null });
  });

  it('gets one listing by its key', async () => {
    expect(await repository.get(accountId, 'unsubscribe', 'Grace.Hopper@example.net')).toEqual(
      entry(11, 'Grace.Hopper@Example.NET', 'unsubscribe', 'unsubscribe'),
    );
    expect(await repository.get(accountId, 'bounce', 'Grace.Hopper@example.net')).toBeUndefined();
  });
});

describe('SuppressionsRepository.exportRows', () => {
  it('yields every listing of the account, by list then key, across pages', async () => {
    const accountId = randomUUID();
    const count = 2_345;
    const addresses = Array.from(
      { length: count },
      (_, i) => `user${String(i).padStart(5, '0')}@example.org`,
    );
    await project([
      ...addresses.map((a, i) => added(accountId, i, a, i % 3 === 0 ? 'unsubscribe' : 'bounce')),
      added(randomUUID(), 0, 'elsewhere@example.org', 'bounce'),
    ]);
    const all: SuppressionEntry[] = [];
    for await (const row of repository.exportRows(accountId)) all.push(row);
    expect(all).toHaveLength(count);
    expect(all.map((e) => e.list)).toEqual([
      ...Array<string>(count - Math.ceil(count / 3)).fill('bounce'),
      ...Array<string>(Math.ceil(count / 3)).fill('unsubscribe'),
    ]);
    expect(all[0]).toEqual(entry(1, 'user00001@example.org', 'bounce'));
    const unsubscribed: string[] = [];
    for await (const row of repository.exportRows(accountId, 'unsubscribe')) unsubscribed.push(row.address);
    expect(unsubscribed).toEqual(addresses.filter((_, i) => i % 3 === 0));
  });
});

describe('SuppressionsRepository.unlisted', () => {
  it('keeps the entries whose address (by key) is not yet on their list, in their order', async () => {
    const accountId = randomUUID();
    await project([
      added(accountId, 1, 'Ann@Example.com', 'bounce'),
      added(accountId, 2, 'bob@example.com', 'unsubscribe'),
    ]);
    const entries = [
      { address: 'Ann@EXAMPLE.COM', list: 'bounce' as const, n: 1 },
      { address: 'ann@example.com', list: 'bounce' as const, n: 2 },
      { address: 'Ann@example.com', list: 'unsubscribe' as const, n: 3 },
      { address: 'bob@example.com', list: 'unsubscribe' as const, n: 4 },
      { address: 'bob@example.com', list: 'bounce' as const, n: 5 },
    ];
    expect((await repository.unlisted(accountId, entries)).map((e) => e.n)).toEqual([2, 3, 5]);
    expect(await repository.unlisted(randomUUID(), entries)).toEqual(entries);
    expect(await repository.unlisted(accountId, [])).toEqual([]);
  });
});
