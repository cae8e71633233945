import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createEvent, type RelayEvent } from '@relay/domain';
import { createTestDatabase, type TestDatabase } from '@relay/testing';
import { eventLogContract, type ContractHarness } from '../event-log.contract.js';
import type { EventLogLogger, LoggedEvent } from '../event-log.port.js';
import {
  insertEvents,
  PostgresEventLog,
  type PostgresEventLogOptions,
} from './postgres-event-log.adapter.js';

/** Keeps the adapter's lines out of the test output; tests read them where they matter. */
class RecordingLogger implements EventLogLogger {
  readonly lines: string[] = [];
  info(message: string): void {
    this.lines.push(message);
  }
  warn(message: string): void {
    this.lines.push(message);
  }
  error(message: string): void {
    this.lines.push(message);
  }
}

const harness: ContractHarness = {
  async freshNamespace() {
    const db = await createTestDatabase('event_log');
    const held = new Set<pg.Client>();
    return {
      open: () => PostgresEventLog.connect({ url: db.url, logger: new RecordingLogger() }),
      async appendUncommitted(events) {
        const client = new pg.Client({ connectionString: db.url });
        await client.connect();
        held.add(client);
        await client.query('BEGIN');
        await insertEvents(client, events);
        return {
          async commit() {
            await client.query('COMMIT');
            held.delete(client);
            await client.end();
          },
        };
      },
      async dispose() {
        // A transaction left open by a failed test would hold back every reader on the server.
        await Promise.all([...held].map((client) => client.end().catch(() => undefined)));
        await db.drop();
      },
    };
  },
};

eventLogContract('postgres', () => harness);

function testEvent(seq: number): RelayEvent {
  return createEvent('SuppressionAdded', {
    accountId: 'acct-pg',
    data: { address: `user${seq}@example.test`, list: 'bounce', source: 'admin', reason: `seq ${seq}` },
  });
}

const seqOf = (logged: LoggedEvent): number =>
  logged.event.type === 'SuppressionAdded' ? Number(logged.event.data.reason.replace('seq ', '')) : -1;

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

describe('PostgresEventLog', () => {
  const cleanups: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });

  async function database(): Promise<TestDatabase> {
    const db = await createTestDatabase('event_log_pg');
    cleanups.push(() => db.drop());
    return db;
  }

  async function open(
    db: TestDatabase,
    options: Partial<PostgresEventLogOptions> = {},
  ): Promise<{ log: PostgresEventLog; logger: RecordingLogger }> {
    const logger = new RecordingLogger();
    const log = await PostgresEventLog.connect({ url: db.url, logger, standbyRetryMs: 100, ...options });
    cleanups.push(() => log.close());
    return { log, logger };
  }

  function collect(): { seen: number[]; handle: (batch: readonly LoggedEvent[]) => Promise<void> } {
    const seen: number[] = [];
    return { seen, handle: async (batch) => void seen.push(...batch.map(seqOf)) };
  }

  it('keeps a second member of a group on standby, which takes over from the committed position', async () => {
    const db = await database();
    const { log: first } = await open(db);
    const { log: second, logger: secondLogger } = await open(db);
    await first.append([0, 1, 2, 3, 4].map(testEvent));

    const a = collect();
    const subA = await first.subscribe({ group: 'pair', handle: a.handle });
    await waitUntil(() => a.seen.length === 5, 'the active member has the first events');

    const b = collect();
    const subB = await second.subscribe({ group: 'pair', handle: b.handle });
    expect(subA.isActive).toBe(true);
    expect(subB.isActive).toBe(false);
    expect(secondLogger.lines.some((line) => line.includes('standing by'))).toBe(true);

    await second.append([5, 6].map(testEvent));
    await waitUntil(() => a.seen.length === 7, 'the active member has the events appended by the standby');
    await subA.stop();

    await first.append([7, 8].map(testEvent));
    await waitUntil(() => b.seen.length === 2, 'the standby took over');
    expect(subB.isActive).toBe(true);
    expect(a.seen).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(b.seen).toEqual([7, 8]);
    await subB.stop();
  });

  it('wakes an idle consumer with NOTIFY, without waiting for the fallback poll', async () => {
    const db = await database();
    // With the fallback poll an hour away, only NOTIFY can deliver these within the test's timeout.
    const { log } = await open(db, { pollIntervalMs: 3_600_000 });
    const arrivals: number[] = [];
    const delivered: number[] = [];
    const subscription = await log.subscribe({
      group: 'notify',
      handle: async (batch) => {
        for (const logged of batch) {
          delivered.push(seqOf(logged));
          arrivals.push(performance.now());
        }
      },
    });
    const latencies: number[] = [];
    for (let seq = 0; seq < 5; seq++) {
      // Lets the consumer finish its empty read and fall asleep, so NOTIFY is what wakes it.
      await sleep(100);
      const appendedAt = performance.now();
      await log.append([testEvent(seq)]);
      await waitUntil(() => delivered.length === seq + 1, `event ${seq} arrived`);
      latencies.push(arrivals[seq]! - appendedAt);
    }
    expect(delivered).toEqual([0, 1, 2, 3, 4]);
    console.info(`append-to-handle via NOTIFY, ms: ${latencies.map((ms) => ms.toFixed(1)).join(', ')}`);
    await subscription.stop();
  });

  it('reconnects after its connection is killed and keeps delivering without loss', async () => {
    const db = await database();
    const { log, logger } = await open(db, { applicationName: 'relay-test-reconnect' });
    const consumer = collect();
    const subscription = await log.subscribe({ group: 'survivor', handle: consumer.handle });
    await log.append([0, 1].map(testEvent));
    await waitUntil(() => consumer.seen.length === 2, 'the first events arrived');

    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      const killed = await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'relay-test-reconnect:survivor'`,
      );
      expect(killed.rowCount).toBe(1);
    } finally {
      await admin.end();
    }

    await log.append([2, 3].map(testEvent));
    await waitUntil(() => new Set(consumer.seen).size === 4, 'the events after the reconnect arrived');
    // Positions are committed every commitIntervalMs: what was handled but not yet committed when
    // the connection died comes again (at least once), and nothing is lost.
    expect([...new Set(consumer.seen)]).toEqual([0, 1, 2, 3]);
    expect(subscription.isActive).toBe(true);
    expect(logger.lines.some((line) => line.includes('connection failed'))).toBe(true);
    await subscription.stop();
  });

  it('wakes every group from one LISTEN session, and again after that session is killed', async () => {
    const db = await database();
    // With the fallback poll an hour away, only the listener can wake the groups in time.
    const { log, logger } = await open(db, {
      pollIntervalMs: 3_600_000,
      applicationName: 'relay-test-listener',
    });
    const consumers = [collect(), collect(), collect()];
    const subscriptions = await Promise.all(
      consumers.map((consumer, i) => log.subscribe({ group: `listener-${i}`, handle: consumer.handle })),
    );
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      const sessions = await admin.query<{ application_name: string }>(
        `SELECT application_name FROM pg_stat_activity
         WHERE datname = current_database() AND application_name LIKE 'relay-test-listener:%'`,
      );
      // One session per group (it holds the group's lock) and one listener, not one per group.
      expect(
        sessions.rows.filter((row) => row.application_name === 'relay-test-listener:listener'),
      ).toHaveLength(1);
      await sleep(100);
      await log.append([testEvent(0)]);
      for (const consumer of consumers) await waitUntil(() => consumer.seen.length === 1, 'woken by NOTIFY');

      const killed = await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'relay-test-listener:listener'`,
      );
      expect(killed.rowCount).toBe(1);
      // Appended while nobody listens: the listener's return wakes the groups for it.
      await log.append([testEvent(1)]);
      for (const consumer of consumers)
        await waitUntil(() => consumer.seen.length === 2, 'woken after the gap');
      await waitUntil(() => logger.lines.some((line) => line.includes('append listener lost')), 'logged');
      await sleep(100);
      await log.append([testEvent(2)]);
      for (const consumer of consumers) await waitUntil(() => consumer.seen.length === 3, 'woken again');
    } finally {
      await admin.end();
    }
    for (const consumer of consumers) expect(consumer.seen).toEqual([0, 1, 2]);
    await Promise.all(subscriptions.map((s) => s.stop()));
  });

  it('fails only the caller whose events are bad when concurrent appends are written together', async () => {
    const db = await database();
    const { log } = await open(db);
    const first = testEvent(0);
    await log.append([first]);
    const bad = { ...testEvent(111), occurredAt: 'not a time' } as RelayEvent;

    // Calls made in one tick are group-committed into a single transaction.
    const calls = Array.from({ length: 20 }, (_, i) =>
      log.append(i === 10 ? [testEvent(110), bad] : [testEvent(100 + i)]),
    );
    const outcomes = await Promise.allSettled(calls);
    expect(outcomes.map((o) => o.status)).toEqual(
      Array.from({ length: 20 }, (_, i) => (i === 10 ? 'rejected' : 'fulfilled')),
    );

    const stored: number[] = [];
    for await (const logged of log.readRange({ from: new Date(0), to: new Date(Date.now() + 60_000) })) {
      stored.push(seqOf(logged));
    }
    expect(stored).toEqual([
      0,
      ...Array.from({ length: 20 }, (_, i) => 100 + i).filter((seq) => seq !== 110),
    ]);
  });

  it('skips an event whose id is already in the log (an append retried after a crash)', async () => {
    const db = await database();
    const { log } = await open(db);
    const event = testEvent(0);
    await log.append([event]);
    await log.append([event, testEvent(1)]);
    const stored: number[] = [];
    for await (const logged of log.readRange({ from: new Date(0), to: new Date(Date.now() + 60_000) })) {
      stored.push(seqOf(logged));
    }
    expect(stored).toEqual([0, 1]);
  });

  it('replays a range larger than a page in log order', async () => {
    const db = await database();
    const { log } = await open(db, { readPageSize: 7 });
    const events = Array.from({ length: 30 }, (_, i) => testEvent(i));
    await log.append(events.slice(0, 13));
    await log.append(events.slice(13));
    const read: number[] = [];
    for await (const logged of log.readRange({ from: new Date(0), to: new Date(Date.now() + 60_000) })) {
      read.push(seqOf(logged));
    }
    expect(read).toEqual(events.map((_, i) => i));
  });

  it('reports health, and not after close', async () => {
    const db = await database();
    const { log } = await open(db);
    expect(await log.isHealthy()).toBe(true);
    await log.close();
    expect(await log.isHealthy()).toBe(false);
    await expect(log.append([testEvent(1)])).rejects.toThrow(/closed/);
  });
});
