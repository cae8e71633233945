import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createEvent,
  suppressionKey,
  type EventOfType,
  type SuppressionList,
  type SuppressionSource,
} from '@relay/domain';
import { KafkaEventLog, PostgresEventLog, type EventLog } from '@relay/event-log';
import { createTestDatabase, TEST_KAFKA_BROKERS, type TestDatabase } from '@relay/testing';
import { createDataSource } from '../../data-source.js';
import type { ProjectedEvent, ProjectionLog, ProjectionLogger } from '../projection.js';
import { consumerGroupOf, ProjectionRunner, rebuildProjection } from '../projection-runner.js';
import { SuppressionsProjector, type SuppressionEvent } from './suppressions.projector.js';

const ACCOUNT = '3970b2cf-531e-467c-ace3-b94552d5dcf5';
const OTHER_ACCOUNT = '7d1e6a52-0b8f-4a57-9e0c-5c3a1f2b9d40';

const quiet: ProjectionLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

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

/** Passes batches through to the log and records what the runner finished (and when it failed one). */
class ObservedLog implements ProjectionLog {
  readonly handled = new Map<string, number>();
  failAfterCommitOnce = false;

  constructor(private readonly log: EventLog) {}

  subscribe(options: Parameters<ProjectionLog['subscribe']>[0]): ReturnType<ProjectionLog['subscribe']> {
    return this.log.subscribe({
      ...options,
      handle: async (batch: readonly ProjectedEvent[]) => {
        await options.handle(batch);
        for (const { event } of batch) this.handled.set(event.id, (this.handled.get(event.id) ?? 0) + 1);
        if (this.failAfterCommitOnce) {
          this.failAfterCommitOnce = false;
          throw new Error('lost the log position commit');
        }
      },
    });
  }
}

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

interface Harness {
  readonly log: EventLog;
  readonly observed: ObservedLog;
  readonly projector: SuppressionsProjector;
  runner: ProjectionRunner;
}

function startRunner(harness: Omit<Harness, 'runner'>, dataSource: DataSource, maxBatchSize?: number) {
  return new ProjectionRunner({
    projection: harness.projector,
    log: harness.observed,
    dataSource,
    logger: quiet,
    generationCheckMs: 100,
    ...(maxBatchSize === undefined ? {} : { maxBatchSize }),
  });
}

/** Appends the events and waits until the runner has committed every one of them. */
async function project(harness: Harness, events: readonly SuppressionEvent[]): Promise<void> {
  await harness.log.append(events);
  await until(() => events.every((e) => harness.observed.handled.has(e.id)), 'the projection');
}

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
  let db: TestDatabase;
  let dataSource: DataSource;
  let h: Harness;

  beforeAll(async () => {
    db = await createTestDatabase('suppressions_projector');
    dataSource = await createDataSource({ url: db.url, poolSize: 6 }).initialize();
    const log = await PostgresEventLog.connect({ url: db.url, pollIntervalMs: 50, logger: quiet });
    const observed = new ObservedLog(log);
    const projector = new SuppressionsProjector();
    // Small batches: the replay of the rebuild test then cuts the log at other places than the appends.
    const runner = startRunner({ log, observed, projector }, dataSource, 7);
    h = { log, observed, projector, runner };
    await runner.start();
  });

  afterAll(async () => {
    await h?.runner.stop();
    await h?.log.close();
    await dataSource?.destroy();
    await db?.drop();
  });

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
  const topic = `test.suppressions.${randomUUID()}`;
  let db: TestDatabase;
  let dataSource: DataSource;
  let h: Harness;

  beforeAll(async () => {
    db = await createTestDatabase('suppressions_kafka');
    dataSource = await createDataSource({ url: db.url, poolSize: 6 }).initialize();
    const log = await KafkaEventLog.connect({
      brokers: TEST_KAFKA_BROKERS,
      topic,
      partitions: 3,
      replicationFactor: 1,
      clientId: 'suppressions-test',
      groupIdPrefix: `${topic}.`,
      logger: quiet,
    });
    const observed = new ObservedLog(log);
    const projector = new SuppressionsProjector();
    const runner = startRunner({ log, observed, projector }, dataSource);
    h = { log, observed, projector, runner };
    await runner.start();
  });

  afterAll(async () => {
    await h?.runner.stop();
    await h?.log.close();
    await dataSource?.destroy();
    await db?.drop();
    const admin = new Kafka({
      clientId: 'suppressions-test-admin',
      brokers: TEST_KAFKA_BROKERS,
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    const { groups } = await admin.listGroups();
    const ours = groups.map((g) => g.groupId).filter((g) => g.startsWith(`${topic}.`));
    if (ours.length > 0) await admin.deleteGroups(ours).catch(() => undefined);
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });

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
