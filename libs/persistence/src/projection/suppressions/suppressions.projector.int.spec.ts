import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createEvent,
  suppressionKey,
  type EventOfType,
  type SuppressionList,
  type SuppressionSource,
} from '@relay/domain';
import { consumerGroupOf, rebuildProjection } from '../projection-runner.js';
import {
  project,
  startProjectionHarness,
  startRunner,
  stopProjectionHarness,
  until,
  type ProjectionHarness,
} from '../testing/projection-harness.js';
import { SuppressionsProjector, type SuppressionEvent } from './suppressions.projector.js';

type Harness = ProjectionHarness<SuppressionsProjector>;

const ACCOUNT = '3970b2cf-531e-467c-ace3-b94552d5dcf5';
const OTHER_ACCOUNT = '7d1e6a52-0b8f-4a57-9e0c-5c3a1f2b9d40';

/** Second `s` of the test's day, as the events write times. */
const at = (s: number): string => new Date(Date.UTC(2025, 2, 14, 9, 0, 0) + s * 1000).toISOString();

function added(
  s: number,
  address: string,
  list: SuppressionList,
  fields: { accountId?: string; source?: SuppressionSource; reason?: string } = {},
): EventOfType<'SuppressionAdded'> {
  return createEvent('SuppressionAdded', {
    accountId: fields.accountId ?? ACCOUNT,
    occurredAt: at(s),
    data: { address, list, source: fields.source ?? 'admin', reason: fields.reason ?? `reason ${s}` },
  });
}

function removed(
  s: number,
  address: string,
  list: SuppressionList,
  accountId = ACCOUNT,
): EventOfType<'SuppressionRemoved'> {
  return createEvent('SuppressionRemoved', {
    accountId,
    occurredAt: at(s),
    data: { address, list, source: 'admin' },
  });
}

interface Row {
  account_id: string;
  list: string;
  address_key: string;
  address: string;
  reason: string;
  source: string;
  created_at: string;
}

/** The table, in code-point order (as sorted() orders), times as text to the microsecond. */
async function rows(dataSource: DataSource, accountId?: string): Promise<Row[]> {
  return dataSource.query(
    `SELECT account_id, list, address_key, address, reason, source,
            to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at
     FROM suppressions WHERE ($1::text IS NULL OR account_id = $1)
     ORDER BY account_id, list, address_key COLLATE "C"`,
    [accountId ?? null],
  );
}

const row = (event: EventOfType<'SuppressionAdded'>): Row => ({
  account_id: event.accountId!,
  list: event.data.list,
  address_key: suppressionKey(event.data.address),
  address: event.data.address,
  reason: event.data.reason,
  source: event.data.source,
  created_at: event.occurredAt.replace('Z', '000Z'),
});

const sorted = (list: Row[]): Row[] =>
  [...list].sort((a, b) =>
    `${a.account_id} ${a.list} ${a.address_key}` < `${b.account_id} ${b.list} ${b.address_key}` ? -1 : 1,
  );

/**
 * A deterministic mix of adds and removes for two accounts, with addresses that differ only in
 * the case of their domain (the same listing) or of their local part (another listing), and
 * with the expected rows computed independently of the projector: per listing, the first add
 * since the last removal.
 */
function mixedSequence(
  count: number,
  accounts: readonly [string, string] = [randomUUID(), randomUUID()],
): { events: SuppressionEvent[]; expected: Row[] } {
  let seed = 42;
  // The high bits of a linear congruential generator: its low bits repeat in short cycles.
  const random = (n: number): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return Math.floor((seed / 2 ** 31) * n);
  };
  const spellings = (i: number): string[] => [
    `user${i}@example.org`,
    `user${i}@EXAMPLE.org`,
    `User${i}@example.org`,
  ];
  const events: SuppressionEvent[] = [];
  const state = new Map<string, Row>();
  for (let s = 0; s < count; s++) {
    const accountId = accounts[random(3) === 0 ? 1 : 0];
    const list: SuppressionList = random(2) === 0 ? 'bounce' : 'unsubscribe';
    const address = spellings(random(8))[random(3)]!;
    const id = `${accountId} ${list} ${suppressionKey(address)}`;
    if (random(3) === 0) {
      events.push(removed(s, address, list, accountId));
      state.delete(id);
    } else {
      const event = added(s, address, list, {
        accountId,
        source: random(2) === 0 ? 'import' : 'bounce',
      });
      events.push(event);
      if (!state.has(id)) state.set(id, row(event));
    }
  }
  return { events, expected: sorted([...state.values()]) };
}

/** Rebuilds and waits until the new generation has replayed the log up to `lastEvent`. */
async function rebuildAndCatchUp(
  h: Harness,
  dataSource: DataSource,
  lastEvent: SuppressionEvent,
): Promise<void> {
  const before = h.observed.handled.get(lastEvent.id) ?? 0;
  const generation = await rebuildProjection(dataSource, h.projector);
  expect(await rows(dataSource)).toEqual([]);
  await until(() => h.runner.group === consumerGroupOf('suppressions', generation), 'the new group');
  await until(() => (h.observed.handled.get(lastEvent.id) ?? 0) > before, 'the replay');
}

describe('suppressions projection on the Postgres event log', () => {
  let dataSource: DataSource;
  let h: Harness;

  beforeAll(async () => {
    h = await startProjectionHarness({
      database: 'suppressions_projector',
      projector: new SuppressionsProjector(),
      generationCheckMs: 100,
      // Small batches: the replay of the rebuild test then cuts the log at other places than the appends.
      maxBatchSize: 7,
    });
    dataSource = h.dataSource;
  });

  afterAll(() => stopProjectionHarness(h));

  it('lists each address once per account and list, under its key: domain case-insensitive, local part as given', async () => {
    const accountId = randomUUID();
    const first = added(1, 'Ann.Smith@Example.COM', 'bounce', {
      accountId,
      source: 'bounce',
      reason: '550 5.1.1 <Ann.Smith@Example.COM>: user unknown',
    });
    const otherMailbox = added(2, 'ann.smith@example.com', 'bounce', { accountId });
    const sameMailbox = added(3, 'Ann.Smith@EXAMPLE.com', 'bounce', { accountId });
    const otherList = added(4, 'Ann.Smith@example.com', 'unsubscribe', {
      accountId,
      source: 'unsubscribe',
    });
    const otherAccount = added(5, 'Ann.Smith@Example.COM', 'bounce', { accountId: OTHER_ACCOUNT });
    await project(h, [first, otherMailbox, sameMailbox, otherList, otherAccount]);

    expect(await rows(dataSource, accountId)).toEqual([
      {
        account_id: accountId,
        list: 'bounce',
        address_key: 'Ann.Smith@example.com',
        address: 'Ann.Smith@Example.COM',
        reason: '550 5.1.1 <Ann.Smith@Example.COM>: user unknown',
        source: 'bounce',
        created_at: '2025-03-14T09:00:01.000000Z',
      },
      row(otherMailbox),
      row(otherList),
    ]);
    expect(await rows(dataSource, OTHER_ACCOUNT)).toContainEqual(row(otherAccount));
  });

  it('keeps the first listing on a duplicate add; a removal deletes it; an add after it is a new listing', async () => {
    const accountId = randomUUID();
    const first = added(10, 'grace@example.net', 'bounce', { accountId });
    await project(h, [first]);
    await project(h, [added(11, 'grace@EXAMPLE.net', 'bounce', { accountId })]);
    expect(await rows(dataSource, accountId)).toEqual([row(first)]);

    await project(h, [removed(12, 'grace@EXAMPLE.NET', 'bounce', accountId)]);
    expect(await rows(dataSource, accountId)).toEqual([]);

    const again = added(13, 'grace@Example.net', 'bounce', { accountId, source: 'import' });
    await project(h, [again]);
    expect(await rows(dataSource, accountId)).toEqual([row(again)]);

    // A removal of an address that is not listed changes nothing.
    await project(h, [removed(14, 'nobody@example.net', 'bounce', accountId)]);
    await project(h, [removed(15, 'grace@example.net', 'unsubscribe', accountId)]);
    expect(await rows(dataSource, accountId)).toEqual([row(again)]);
  });

  it('applies adds and removes of one listing within one batch as one by one', async () => {
    const accountId = randomUUID();
    const kept = added(20, 'kept@example.org', 'bounce', { accountId });
    const relisted = added(24, 'back@example.org', 'unsubscribe', { accountId });
    await project(h, [
      kept,
      added(21, 'gone@example.org', 'bounce', { accountId }),
      added(22, 'back@example.org', 'unsubscribe', { accountId }),
      removed(23, 'gone@example.org', 'bounce', accountId),
      removed(23, 'back@example.org', 'unsubscribe', accountId),
      relisted,
      added(25, 'back@example.org', 'unsubscribe', { accountId }),
    ]);
    expect(await rows(dataSource, accountId)).toEqual([row(kept), row(relisted)]);
  });

  it('changes nothing when a batch is redelivered, nor when the log replays the whole group', async () => {
    const accountId = randomUUID();
    const first = added(30, 'ada@example.org', 'bounce', { accountId });
    await project(h, [first]);
    h.observed.failAfterCommitOnce = true;
    const remove = removed(31, 'ada@example.org', 'bounce', accountId);
    const readd = added(32, 'ada@example.org', 'bounce', { accountId });
    await h.log.append([remove, readd]);
    await until(() => h.observed.handled.get(readd.id) === 2, 'the redelivery');
    expect(await rows(dataSource, accountId)).toEqual([row(readd)]);

    const before = await rows(dataSource);
    await h.runner.stop();
    await dataSource.query(`DELETE FROM event_log_consumer_positions`);
    h.observed.handled.clear();
    h.runner = startRunner(h, dataSource, 7);
    await h.runner.start();
    await until(() => h.observed.handled.get(readd.id) === 1, 'the replay');
    expect(await rows(dataSource)).toEqual(before);
  });

  it('rebuilds to the same rows: a mixed sequence, the table, rebuildProjection, the replay, the table', async () => {
    const accounts: readonly [string, string] = [randomUUID(), randomUUID()];
    const { events, expected } = mixedSequence(400, accounts);
    for (let i = 0; i < events.length; i += 50) await project(h, events.slice(i, i + 50));
    const ours = (await rows(dataSource)).filter((r) => accounts.includes(r.account_id));
    expect(ours).toEqual(expected);
    expect(ours.length).toBeGreaterThan(10);

    const snapshot = await rows(dataSource);
    await rebuildAndCatchUp(h, dataSource, events.at(-1)!);
    expect(await rows(dataSource)).toEqual(snapshot);
  });
});

describe('suppressions projection on the Kafka event log', () => {
  let dataSource: DataSource;
  let h: Harness;

  beforeAll(async () => {
    h = await startProjectionHarness({
      database: 'suppressions_kafka',
      projector: new SuppressionsProjector(),
      generationCheckMs: 100,
      kafka: 'suppressions',
    });
    dataSource = h.dataSource;
  });

  afterAll(() => stopProjectionHarness(h));

  it('applies an event published twice once, across partitions, and rebuilds to the same rows', async () => {
    const { events, expected } = mixedSequence(120);
    // The outbox relay may append a batch again after a crash: the copy follows its original.
    const i = events.findIndex((e) => e.type === 'SuppressionAdded');
    await project(h, [...events.slice(0, i + 1), events[i]!, ...events.slice(i + 1)]);
    const lastOf = new Map(events.map((e) => [e.accountId, e]));
    await until(() => [...lastOf.values()].every((e) => h.observed.handled.has(e.id)), 'both accounts');
    expect(await rows(dataSource)).toEqual(expected);

    // On Kafka, each account's events are one partition's: wait for the last of each.
    const generation = await rebuildProjection(dataSource, h.projector);
    expect(await rows(dataSource)).toEqual([]);
    h.observed.handled.clear();
    await until(() => h.runner.group === consumerGroupOf('suppressions', generation), 'the new group');
    await until(
      () => [...lastOf.values()].every((e) => h.observed.handled.has(e.id)),
      'the replay of both accounts',
    );
    expect(await rows(dataSource)).toEqual(expected);
  });
});
