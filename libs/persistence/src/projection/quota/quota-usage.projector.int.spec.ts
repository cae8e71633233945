import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, type EventOfType, type RelayEvent } from '@relay/domain';
import { consumerGroupOf, rebuildProjection } from '../projection-runner.js';
import {
  project,
  startProjectionHarness,
  startRunner,
  stopProjectionHarness,
  until,
  type ProjectionHarness,
} from '../testing/projection-harness.js';
import { QuotaUsageProjector } from './quota-usage.projector.js';

type Harness = ProjectionHarness<QuotaUsageProjector>;

interface Decision {
  readonly accountId: string;
  readonly period: string;
  readonly size: number;
  readonly queued: readonly string[];
  readonly suppressed?: readonly string[];
  readonly held?: readonly string[];
}

const spooled = (messageId: string) => ({
  mailFrom: 'app@example.com',
  from: 'app@example.com',
  spoolKey: `spool/${messageId}`,
});

/** What the policy stage appends for one message: Suppressed per listed recipient, QuotaExceeded, MessageQueued. */
function decided(d: Decision): RelayEvent[] {
  const messageId = randomUUID();
  const occurredAt = `${d.period}-14T09:00:00.000Z`;
  const common = { accountId: d.accountId, messageId, occurredAt };
  const events: RelayEvent[] = (d.suppressed ?? []).map((recipient) =>
    createEvent('Suppressed', { ...common, data: { ...spooled(messageId), recipient, list: 'bounce' } }),
  );
  if (d.held?.length)
    events.push(
      createEvent('QuotaExceeded', {
        ...common,
        data: {
          ...spooled(messageId),
          recipients: d.held,
          size: d.size,
          period: d.period,
          usage: { messages: 5, bytes: 5 * d.size },
          limits: { messages: 5, bytes: null },
          smtpUtf8: false,
          eightBitMime: false,
        },
      }),
    );
  if (d.queued.length > 0) events.push(queued(d.accountId, d.period, d.size, d.queued, messageId));
  return events;
}

function queued(
  accountId: string,
  period: string,
  size: number,
  recipients: readonly string[],
  messageId = randomUUID(),
): EventOfType<'MessageQueued'> {
  return createEvent('MessageQueued', {
    accountId,
    messageId,
    occurredAt: `${period}-14T09:00:00.000Z`,
    data: {
      mailFrom: 'app@example.com',
      spoolKey: `spool/${messageId}`,
      recipients,
      size,
      period,
      smtpUtf8: false,
      eightBitMime: false,
      receivedAt: `${period}-14T08:59:59.000Z`,
    },
  });
}

interface Row {
  account_id: string;
  period: string;
  messages: number;
  bytes: number;
}

async function rows(dataSource: DataSource, accountIds?: readonly string[]): Promise<Row[]> {
  const result: { account_id: string; period: string; messages: string; bytes: string }[] =
    await dataSource.query(
      `SELECT account_id, period, messages::text AS messages, bytes::text AS bytes FROM quota_usage
       WHERE ($1::text[] IS NULL OR account_id = ANY($1::text[]))
       ORDER BY account_id COLLATE "C", period`,
      [accountIds ?? null],
    );
  return result.map((r) => ({ ...r, messages: Number(r.messages), bytes: Number(r.bytes) }));
}

const sorted = (list: Row[]): Row[] =>
  [...list].sort((a, b) => (`${a.account_id} ${a.period}` < `${b.account_id} ${b.period}` ? -1 : 1));

/**
 * A deterministic run of decisions for two accounts over two months: each message has 1 to 4
 * recipients, some suppressed, some held over quota, the rest queued; with the expected rows
 * computed independently of the projector (queued recipients only).
 */
function mixedRun(
  count: number,
  accounts: readonly [string, string],
): { events: RelayEvent[]; expected: Row[] } {
  let seed = 7;
  // The high bits of a linear congruential generator: its low bits repeat in short cycles.
  const random = (n: number): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return Math.floor((seed / 2 ** 31) * n);
  };
  const periods = ['2025-02', '2025-03'] as const;
  const events: RelayEvent[] = [];
  const totals = new Map<string, Row>();
  for (let i = 0; i < count; i++) {
    const accountId = accounts[random(3) === 0 ? 1 : 0];
    const period = periods[i < count / 3 ? 0 : random(4) === 0 ? 0 : 1];
    const size = 200 + random(50_000);
    const recipients = Array.from({ length: 1 + random(4) }, (_, r) => `r${i}-${r}@example.org`);
    const fate = recipients.map(() => random(6));
    const decision: Decision = {
      accountId,
      period,
      size,
      suppressed: recipients.filter((_, r) => fate[r] === 0),
      held: recipients.filter((_, r) => fate[r] === 1),
      queued: recipients.filter((_, r) => fate[r]! > 1),
    };
    events.push(...decided(decision));
    if (decision.queued.length === 0) continue;
    const key = `${accountId} ${period}`;
    const total = totals.get(key) ?? { account_id: accountId, period, messages: 0, bytes: 0 };
    totals.set(key, {
      ...total,
      messages: total.messages + decision.queued.length,
      bytes: total.bytes + decision.queued.length * size,
    });
  }
  return { events, expected: sorted([...totals.values()]) };
}

describe('quota projection on the Postgres event log', () => {
  let dataSource: DataSource;
  let h: Harness;

  beforeAll(async () => {
    h = await startProjectionHarness({
      database: 'quota_projector',
      projector: new QuotaUsageProjector(),
      generationCheckMs: 100,
      // Small batches: the replay of the rebuild test then cuts the log at other places than the appends.
      maxBatchSize: 7,
    });
    dataSource = h.dataSource;
  });

  afterAll(() => stopProjectionHarness(h));

  it('counts each queued recipient one message and the size, per account and month; suppressed and held ones not', async () => {
    const [ada, bob] = [randomUUID(), randomUUID()];
    await project(h, [
      ...decided({
        accountId: ada,
        period: '2025-03',
        size: 1_000,
        queued: ['a@example.org', 'b@example.org'],
        suppressed: ['listed@example.org'],
        held: ['late@example.org'],
      }),
      ...decided({ accountId: ada, period: '2025-03', size: 250, queued: ['c@example.org'] }),
      ...decided({ accountId: ada, period: '2025-04', size: 70, queued: ['a@example.org'] }),
      ...decided({ accountId: bob, period: '2025-03', size: 10, queued: [], held: ['x@example.org'] }),
      ...decided({ accountId: bob, period: '2025-03', size: 10, queued: [], suppressed: ['y@example.org'] }),
    ]);
    expect(await rows(dataSource, [ada, bob])).toEqual(
      sorted([
        { account_id: ada, period: '2025-03', messages: 3, bytes: 2_250 },
        { account_id: ada, period: '2025-04', messages: 1, bytes: 70 },
      ]),
    );

    // Later batches add to the month's row.
    await project(h, [
      queued(ada, '2025-03', 5_000_000, ['d@example.org', 'e@example.org', 'f@example.org']),
    ]);
    expect((await rows(dataSource, [ada]))[0]).toEqual({
      account_id: ada,
      period: '2025-03',
      messages: 6,
      bytes: 15_002_250,
    });
  });

  it('counts a redelivered batch once, and a replay of the whole group changes nothing', async () => {
    const accountId = randomUUID();
    await project(h, [queued(accountId, '2025-03', 100, ['a@example.org'])]);
    h.observed.failAfterCommitOnce = true;
    const second = queued(accountId, '2025-03', 100, ['b@example.org', 'c@example.org']);
    await h.log.append([second]);
    await until(() => h.observed.handled.get(second.id) === 2, 'the redelivery');
    expect(await rows(dataSource, [accountId])).toEqual([
      { account_id: accountId, period: '2025-03', messages: 3, bytes: 300 },
    ]);

    const before = await rows(dataSource);
    await h.runner.stop();
    await dataSource.query(`DELETE FROM event_log_consumer_positions`);
    h.observed.handled.clear();
    h.runner = startRunner(h, dataSource, 7);
    await h.runner.start();
    await until(() => h.observed.handled.get(second.id) === 1, 'the replay');
    expect(await rows(dataSource)).toEqual(before);
  });

  it('rebuilds to the same rows: a mixed run, the table, rebuildProjection, the replay, the table', async () => {
    const accounts: readonly [string, string] = [randomUUID(), randomUUID()];
    const { events, expected } = mixedRun(300, accounts);
    for (let i = 0; i < events.length; i += 40) await project(h, events.slice(i, i + 40));
    expect(await rows(dataSource, accounts)).toEqual(expected);
    expect(expected).toHaveLength(4);

    const snapshot = await rows(dataSource);
    const last = events.at(-1)!;
    const before = h.observed.handled.get(last.id) ?? 0;
    const generation = await rebuildProjection(dataSource, h.projector);
    expect(await rows(dataSource)).toEqual([]);
    await until(() => h.runner.group === consumerGroupOf('quota', generation), 'the new group');
    await until(() => (h.observed.handled.get(last.id) ?? 0) > before, 'the replay');
    expect(await rows(dataSource)).toEqual(snapshot);
  });
});

describe('quota projection on the Kafka event log', () => {
  let dataSource: DataSource;
  let h: Harness;

  beforeAll(async () => {
    h = await startProjectionHarness({
      database: 'quota_kafka',
      projector: new QuotaUsageProjector(),
      generationCheckMs: 100,
      kafka: 'quota',
    });
    dataSource = h.dataSource;
  });

  afterAll(() => stopProjectionHarness(h));

  it('counts an event published twice once, across partitions, and rebuilds to the same rows', async () => {
    const accounts: readonly [string, string] = [randomUUID(), randomUUID()];
    const { events, expected } = mixedRun(90, accounts);
    // The outbox relay may append a batch again after a crash: the copies follow their originals,
    // one in the same append, one in the next.
    const copies = events.filter((e) => e.type === 'MessageQueued').slice(0, 2);
    const i = events.indexOf(copies[0]!);
    await h.log.append([...events.slice(0, i + 1), copies[0]!, ...events.slice(i + 1)]);
    await h.log.append([copies[1]!]);
    // The log hands the projection only MessageQueued: wait for the last of those per account.
    const lastOf = new Map(events.filter((e) => e.type === 'MessageQueued').map((e) => [e.accountId, e]));
    await until(() => [...lastOf.values()].every((e) => h.observed.handled.has(e.id)), 'both accounts');
    await until(() => (h.observed.handled.get(copies[1]!.id) ?? 0) >= 2, 'the second copy');
    expect(await rows(dataSource)).toEqual(expected);

    // On Kafka, each account's events are one partition's: wait for the last of each.
    const generation = await rebuildProjection(dataSource, h.projector);
    expect(await rows(dataSource)).toEqual([]);
    h.observed.handled.clear();
    await until(() => h.runner.group === consumerGroupOf('quota', generation), 'the new group');
    await until(
      () => [...lastOf.values()].every((e) => h.observed.handled.has(e.id)),
      'the replay of both accounts',
    );
    await until(() => (h.observed.handled.get(copies[1]!.id) ?? 0) >= 2, 'the replay of the second copy');
    expect(await rows(dataSource)).toEqual(expected);
  });
});
