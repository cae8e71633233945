import { setTimeout as sleep } from 'node:timers/promises';
import type { DataSource, EntityManager } from 'typeorm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEvent, type EventOfType, type RelayEvent } from '@relay/domain';
import { PostgresEventLog } from '@relay/event-log';
import { createTestDatabase, type TestDatabase } from '@relay/testing';
import { createDataSource } from '../data-source.js';
import type { ProjectedEvent, Projection, ProjectionLog, ProjectionLogger } from './projection.js';
import { consumerGroupOf, ProjectionRunner, rebuildProjection } from './projection-runner.js';

const ACCOUNT_ID = '4b0c2c8e-8f0e-4d0a-9a39-2f8d6c1e7a10';

const quiet: ProjectionLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Events numbered by their reason, so what was applied reads back as numbers. */
const numbered = (n: number): RelayEvent =>
  createEvent('SuppressionAdded', {
    accountId: ACCOUNT_ID,
    data: { address: `user${n}@example.test`, list: 'bounce', source: 'admin', reason: String(n) },
  });

/** An event type the test projection does not declare. */
const unrelated = (): RelayEvent =>
  createEvent('AccountPlanChanged', {
    accountId: ACCOUNT_ID,
    data: { monthlyMessageLimit: 1, monthlyByteLimit: null, overageAllowed: false },
  });

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/**
 * Records every application in a table without a unique key, so an event applied twice shows up
 * as two rows. `failOn` makes the apply of that number throw, once.
 */
class NumbersProjection implements Projection<'SuppressionAdded'> {
  readonly eventTypes = ['SuppressionAdded'] as const;
  readonly seen: string[] = [];
  failOn: number | undefined;

  constructor(readonly name = 'numbers') {}

  async apply(event: EventOfType<'SuppressionAdded'>, manager: EntityManager): Promise<void> {
    this.seen.push(event.type);
    const n = Number(event.data.reason);
    await manager.query(`INSERT INTO applied_numbers (projection, n) VALUES ($1, $2)`, [this.name, n]);
    if (n === this.failOn) {
      this.failOn = undefined;
      throw new Error(`apply of ${n} failed`);
    }
  }

  async reset(manager: EntityManager): Promise<void> {
    await manager.query(`DELETE FROM applied_numbers WHERE projection = $1`, [this.name]);
  }
}

/**
 * Passes batches through to the real log's subscription and remembers what was handled. With
 * `failAfterCommitOnce`, the first batch's handle() rejects after the runner committed it: the
 * log then redelivers it, as after a crash between the two commits.
 */
class ObservedLog implements ProjectionLog {
  readonly handled: string[] = [];
  readonly groups: string[] = [];
  failAfterCommitOnce = false;

  constructor(
    private readonly log: ProjectionLog,
    private readonly renameGroup: (group: string) => string = (group) => group,
  ) {}

  subscribe(options: Parameters<ProjectionLog['subscribe']>[0]): ReturnType<ProjectionLog['subscribe']> {
    const group = this.renameGroup(options.group);
    this.groups.push(group);
    return this.log.subscribe({
      ...options,
      group,
      handle: async (batch: readonly ProjectedEvent[]) => {
        await options.handle(batch);
        this.handled.push(...batch.map((e) => e.event.id));
        if (this.failAfterCommitOnce) {
          this.failAfterCommitOnce = false;
          throw new Error('lost the log position commit');
        }
      },
    });
  }

  timesHandled(id: string): number {
    return this.handled.filter((h) => h === id).length;
  }
}

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

let db: TestDatabase;
let dataSource: DataSource;
let log: PostgresEventLog;
const runners: ProjectionRunner[] = [];

async function applied(projection = 'numbers'): Promise<number[]> {
  const rows: { n: number }[] = await dataSource.query(
    `SELECT n FROM applied_numbers WHERE projection = $1 ORDER BY id`,
    [projection],
  );
  return rows.map((r) => r.n);
}

async function positions(projection = 'numbers'): Promise<{ partition: number; log_offset: string }[]> {
  return dataSource.query(
    `SELECT partition, log_offset FROM projection_positions WHERE projection = $1 ORDER BY partition`,
    [projection],
  );
}

function runner(projection: Projection, projectionLog: ProjectionLog = log): ProjectionRunner {
  const created = new ProjectionRunner({
    projection,
    log: projectionLog,
    dataSource,
    logger: quiet,
    maxBatchSize: 10,
    generationCheckMs: 100,
  });
  runners.push(created);
  return created;
}

beforeAll(async () => {
  db = await createTestDatabase('projection_runner');
  dataSource = await createDataSource({ url: db.url, poolSize: 8 }).initialize();
  await dataSource.query(
    `CREATE TABLE applied_numbers (id bigserial PRIMARY KEY, projection text NOT NULL, n int NOT NULL)`,
  );
});

beforeEach(async () => {
  log = await PostgresEventLog.connect({ url: db.url, pollIntervalMs: 50, logger: quiet });
  await dataSource.query(
    `TRUNCATE event_log, event_log_consumer_positions, applied_numbers, projection_positions, projection_generations`,
  );
});

afterEach(async () => {
  for (const r of runners.splice(0)) await r.stop();
  await log.close();
});

afterAll(async () => {
  await dataSource?.destroy();
  await db?.drop();
});

describe('ProjectionRunner', () => {
  it('applies each event once, in log order, and stores the position with the rows', async () => {
    await log.append(range(0, 25).map(numbered));
    const projection = new NumbersProjection();
    const observed = new ObservedLog(log);
    await runner(projection, observed).start();
    await until(async () => (await applied()).length === 25, '25 events');
    expect(await applied()).toEqual(range(0, 25));
    expect(observed.groups).toEqual(['projection-numbers']);
    const [position] = await positions();
    const [lastOffset] = await dataSource.query<{ o: string }[]>(
      `SELECT max(lpad(tx_id::text, 20, '0') || ':' || lpad(position::text, 20, '0')) AS o FROM event_log`,
    );
    expect(position).toEqual({ partition: 0, log_offset: lastOffset?.o });
  });

  it('keeps a position per partition when one batch spans several (as Kafka hands them)', async () => {
    // A log that hands the runner batches built here, positioned as Kafka positions them.
    let deliver: ((batch: readonly ProjectedEvent[]) => Promise<void>) | undefined;
    const handBuilt: ProjectionLog = {
      subscribe: async (options) => {
        deliver = (batch) => options.handle(batch);
        return { stop: () => Promise.resolve() };
      },
    };
    await runner(new NumbersProjection(), handBuilt).start();
    const at = (partition: number, offset: number, n: number): ProjectedEvent => ({
      event: numbered(n),
      position: { partition, offset: String(offset).padStart(20, '0') },
    });
    const first = [at(2, 7, 0), at(0, 3, 1), at(2, 8, 2)];
    await deliver!(first);
    expect(await positions()).toEqual([
      { partition: 0, log_offset: '00000000000000000003' },
      { partition: 2, log_offset: '00000000000000000008' },
    ]);
    // Redelivered with one new event per partition: only the new ones are applied (order holds
    // within a partition; partitions go in the order they first appear in the batch).
    await deliver!([...first, at(0, 4, 3), at(2, 9, 4)]);
    expect(await applied()).toEqual([0, 2, 1, 4, 3]);
    expect(await positions()).toEqual([
      { partition: 0, log_offset: '00000000000000000004' },
      { partition: 2, log_offset: '00000000000000000009' },
    ]);
  });

  it('skips a batch redelivered after its transaction committed (the log lost its own commit)', async () => {
    const projection = new NumbersProjection();
    const observed = new ObservedLog(log);
    observed.failAfterCommitOnce = true;
    await runner(projection, observed).start();
    const events = range(0, 5).map(numbered);
    await log.append(events);
    await until(() => observed.timesHandled(events[0]!.id) === 2, 'the redelivery');
    await until(() => observed.timesHandled(events[4]!.id) >= 1, 'the last event');
    expect(await applied()).toEqual(range(0, 5));
  });

  it('skips everything already applied when the log starts the group over from the beginning', async () => {
    const projection = new NumbersProjection();
    await runner(projection).start();
    await log.append(range(0, 12).map(numbered));
    await until(async () => (await applied()).length === 12, '12 events');
    await runners.pop()!.stop();

    await dataSource.query(`DELETE FROM event_log_consumer_positions`);
    const observed = new ObservedLog(log);
    await runner(projection, observed).start();
    await log.append(range(12, 15).map(numbered));
    await until(() => observed.handled.length === 15, 'the whole log again');
    expect(await applied()).toEqual(range(0, 15));
  });

  it('rolls back the whole batch, position included, when an apply fails; the redelivery applies it once', async () => {
    const projection = new NumbersProjection();
    projection.failOn = 3;
    await log.append(range(0, 6).map(numbered));
    await runner(projection).start();
    await until(async () => (await applied()).length === 6, 'six events');
    // 0..3 were applied twice (the failed attempt and the redelivery), yet each row is there once.
    expect(projection.seen).toHaveLength(6 + 4);
    expect(await applied()).toEqual(range(0, 6));
  });

  it('is handed only the event types its projection declares (the log filters them)', async () => {
    const projection = new NumbersProjection();
    const observed = new ObservedLog(log);
    await runner(projection, observed).start();
    await log.append([unrelated(), unrelated()]);
    await log.append([numbered(1), unrelated(), numbered(2), unrelated()]);
    await until(() => observed.handled.length === 2, 'the numbered events');
    await sleep(500);
    expect(observed.handled).toHaveLength(2);
    expect(await applied()).toEqual([1, 2]);
    expect(projection.seen).toEqual(['SuppressionAdded', 'SuppressionAdded']);
    expect(await positions()).toHaveLength(1);
  });

  it('applies each event once when two consumers deliver the same events at the same time', async () => {
    // A rebalance on Kafka can leave a partition with two members for a moment; here two groups
    // stand for them, each delivered the whole log.
    const projection = new NumbersProjection();
    const first = new ObservedLog(log);
    const second = new ObservedLog(log, (group) => `${group}-zombie`);
    await Promise.all([runner(projection, first).start(), runner(projection, second).start()]);
    await log.append(range(0, 40).map(numbered));
    await until(() => first.handled.length === 40 && second.handled.length === 40, 'both consumers');
    expect(await applied()).toEqual(range(0, 40));
  });

  it('rebuilds while running: empties the rows and replays the log from its start under a new group', async () => {
    const projection = new NumbersProjection();
    const observed = new ObservedLog(log);
    const running = runner(projection, observed);
    await running.start();
    await log.append(range(0, 8).map(numbered));
    await until(async () => (await applied()).length === 8, 'eight events');

    expect(await rebuildProjection(dataSource, projection)).toBe(1);
    await until(() => running.group === consumerGroupOf('numbers', 1), 'the new group');
    await log.append([numbered(8)]);
    await until(async () => (await applied()).length === 9, 'the replay');
    expect(await applied()).toEqual(range(0, 9));
    expect(observed.groups).toEqual(['projection-numbers', 'projection-numbers-g1']);
    expect(await positions()).toHaveLength(1);
  });

  it('rebuilds while stopped: the next start replays from the start, other projections untouched', async () => {
    const numbers = new NumbersProjection();
    const others = new NumbersProjection('others');
    await runner(numbers).start();
    await runner(others).start();
    await log.append(range(0, 5).map(numbered));
    await until(async () => (await applied()).length === 5 && (await applied('others')).length === 5, 'both');
    for (const r of runners.splice(0)) await r.stop();

    expect(await rebuildProjection(dataSource, numbers)).toBe(1);
    expect(await applied()).toEqual([]);
    expect(await positions()).toEqual([]);
    expect(await applied('others')).toEqual(range(0, 5));
    expect(await positions('others')).toHaveLength(1);

    const restarted = runner(numbers);
    await restarted.start();
    expect(restarted.group).toBe('projection-numbers-g1');
    await until(async () => (await applied()).length === 5, 'the replay');
    expect(await applied()).toEqual(range(0, 5));
    expect(await rebuildProjection(dataSource, numbers)).toBe(2);
  });
});
