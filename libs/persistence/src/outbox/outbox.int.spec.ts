import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { DataSource } from 'typeorm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, type RelayEvent } from '@relay/domain';
import { createTestDatabase, type TestDatabase } from '@relay/testing';
import { createDataSource } from '../data-source.js';
import { appendToOutbox } from './outbox.js';
import { OutboxRelay, type OutboxRelayLogger, type OutboxRelayOptions } from './outbox-relay.js';

const ACCOUNT_ID = '0d6f5a52-3f7e-4d7c-9a43-41d1f1f3c0aa';

/** Events numbered by their message limit, so the log's order is easy to read back. */
const numbered = (n: number): RelayEvent =>
  createEvent('AccountPlanChanged', {
    accountId: ACCOUNT_ID,
    data: { monthlyMessageLimit: n, monthlyByteLimit: null, overageAllowed: false },
  });

const numberOf = (event: RelayEvent): number =>
  event.type === 'AccountPlanChanged' ? (event.data.monthlyMessageLimit ?? -1) : -1;

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/**
 * Stands in for the event log: records every append. Like the Postgres log, it can refuse an id it
 * already has (SQLSTATE 23505); like Kafka, it can take it again.
 */
class RecordingLog {
  readonly appended: RelayEvent[] = [];
  readonly calls: number[][] = [];
  failures = 0;
  beforeResolve: ((events: readonly RelayEvent[]) => Promise<void>) | undefined;

  constructor(private readonly refuseDuplicates: boolean) {}

  readonly append = async (events: readonly RelayEvent[]): Promise<void> => {
    if (this.failures > 0) {
      this.failures--;
      throw new Error('log unavailable');
    }
    if (this.refuseDuplicates && events.some((e) => this.appended.some((a) => a.id === e.id))) {
      throw Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' });
    }
    this.appended.push(...events);
    this.calls.push(events.map(numberOf));
    await this.beforeResolve?.(events);
  };

  numbers(): number[] {
    return this.appended.map(numberOf);
  }
}

const quiet: OutboxRelayLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('the transactional outbox', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let admin: pg.Client;
  const relays: OutboxRelay[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('outbox');
    dataSource = await createDataSource({ url: db.url, poolSize: 4 }).initialize();
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
  });

  afterEach(async () => {
    await Promise.all(relays.splice(0).map((relay) => relay.stop()));
    await admin.query('DELETE FROM outbox');
  });

  afterAll(async () => {
    await admin?.end();
    await dataSource?.destroy();
    await db?.drop();
  });

  function startRelay(
    options: Partial<OutboxRelayOptions> & Pick<OutboxRelayOptions, 'append'>,
  ): OutboxRelay {
    const relay = new OutboxRelay({ url: db.url, logger: quiet, ...options });
    relays.push(relay);
    relay.start();
    return relay;
  }

  const write = (events: readonly RelayEvent[]): Promise<void> =>
    dataSource.transaction((manager) => appendToOutbox(manager, events));

  const outboxCount = async (): Promise<number> =>
    Number((await admin.query<{ n: string }>('SELECT count(*) AS n FROM outbox')).rows[0]?.n);

  it('never publishes an event whose transaction rolled back, and publishes committed ones in order', async () => {
    const log = new RecordingLog(true);
    startRelay({ append: log.append, pollIntervalMs: 100 });
    await write([numbered(1), numbered(2)]);
    await expect(
      dataSource.transaction(async (manager) => {
        await appendToOutbox(manager, [numbered(666)]);
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    await write([numbered(3)]);
    await until(() => log.appended.length >= 3, 'three events');
    await sleep(300);
    expect(log.numbers()).toEqual([1, 2, 3]);
    expect(await outboxCount()).toBe(0);
  });

  it('refuses to write outside a transaction, where the events could outlive a failed change', async () => {
    await expect(appendToOutbox(dataSource.manager, [numbered(1)])).rejects.toThrow(/inside the transaction/);
    expect(await outboxCount()).toBe(0);
  });

  it('is woken by NOTIFY at commit, without waiting for the poll', async () => {
    const log = new RecordingLog(true);
    const relay = startRelay({ append: log.append, pollIntervalMs: 60_000 });
    await until(() => relay.isActive, 'the relay to be active');
    await sleep(100);
    const started = Date.now();
    await write([numbered(1)]);
    await until(() => log.appended.length === 1, 'the event', 5_000);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('finds rows by polling when no NOTIFY came', async () => {
    const log = new RecordingLog(true);
    startRelay({ append: log.append, pollIntervalMs: 200 });
    await admin.query('INSERT INTO outbox (event) VALUES ($1)', [JSON.stringify(numbered(7))]);
    await until(() => log.appended.length === 1, 'the polled event');
    expect(log.numbers()).toEqual([7]);
  });

  it('moves a backlog in id order, batch by batch', async () => {
    // Ids cross from two digits to three, where ordering them as text would go wrong.
    await admin.query(`SELECT setval('outbox_id_seq', 95)`);
    for (const n of range(0, 25)) await write([numbered(n)]);
    const log = new RecordingLog(true);
    startRelay({ append: log.append, batchSize: 10 });
    await until(() => log.appended.length === 25, 'the backlog');
    expect(log.calls).toEqual([range(0, 10), range(10, 20), range(20, 25)]);
  });

  it('keeps the events while the log refuses them, and moves them once it takes them', async () => {
    const log = new RecordingLog(true);
    log.failures = 2;
    startRelay({ append: log.append });
    await write([numbered(1), numbered(2)]);
    await until(() => log.appended.length === 2, 'the events after two failures');
    expect(log.numbers()).toEqual([1, 2]);
    await until(async () => (await outboxCount()) === 0, 'an empty outbox');
  });

  describe('a crash after the append and before the delete', () => {
    /** Kills the relay's session right after the log took the batch holding event `n`, once. */
    function crashAfterAppending(log: RecordingLog, n: number, applicationName: string): void {
      let crashed = false;
      log.beforeResolve = async (events) => {
        if (crashed || !events.some((e) => numberOf(e) === n)) return;
        crashed = true;
        await admin.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
          [applicationName],
        );
        await until(
          async () =>
            (
              await admin.query('SELECT 1 FROM pg_stat_activity WHERE application_name = $1', [
                applicationName,
              ])
            ).rowCount === 0,
          'the relay session to end',
        );
      };
    }

    it('appends only the last batch again, to a log that takes duplicates (at least once)', async () => {
      for (const n of range(0, 35)) await write([numbered(n)]);
      const log = new RecordingLog(false);
      crashAfterAppending(log, 15, 'outbox-crash-kafka-like');
      startRelay({ append: log.append, batchSize: 10, applicationName: 'outbox-crash-kafka-like' });
      await until(() => log.appended.length === 45, 'the backlog and the repeated batch');
      expect(log.calls).toEqual([range(0, 10), range(10, 20), range(10, 20), range(20, 30), range(30, 35)]);
      await until(async () => (await outboxCount()) === 0, 'an empty outbox');
    });

    it('counts ids a log refuses as known as done, and goes on (Postgres log)', async () => {
      for (const n of range(0, 35)) await write([numbered(n)]);
      const log = new RecordingLog(true);
      crashAfterAppending(log, 15, 'outbox-crash-pg-like');
      startRelay({ append: log.append, batchSize: 10, applicationName: 'outbox-crash-pg-like' });
      await until(async () => (await outboxCount()) === 0, 'an empty outbox');
      expect(log.numbers()).toEqual(range(0, 35));
    });
  });

  it('keeps one relay active across processes; a standby takes over when it stops', async () => {
    const first = new RecordingLog(true);
    const second = new RecordingLog(true);
    const a = startRelay({ append: first.append, standbyRetryMs: 100, applicationName: 'outbox-a' });
    await until(() => a.isActive, 'the first relay to be active');
    const b = startRelay({ append: second.append, standbyRetryMs: 100, applicationName: 'outbox-b' });
    await sleep(300);
    expect(b.isActive).toBe(false);
    for (const n of range(0, 20)) await write([numbered(n)]);
    await until(() => first.appended.length === 20, 'the first relay to move everything');
    expect(second.appended).toEqual([]);

    await a.stop();
    await until(() => b.isActive, 'the standby to take over');
    await write([numbered(20)]);
    await until(() => second.appended.length === 1, 'the standby to move the next event');
    expect(first.numbers()).toEqual(range(0, 20));
    expect(second.numbers()).toEqual([20]);
  });
});
