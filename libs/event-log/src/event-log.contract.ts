import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, type RelayEvent } from '@relay/domain';
import { createTestDatabase, type TestDatabase } from '@relay/testing';
import type { EventLog, LoggedEvent, Subscription } from './event-log.port.js';

/** One isolated log (its own topic or database) that several client instances can open. */
export interface LogNamespace {
  /** A new client instance; a process restart is a new instance on the same namespace. */
  open(): Promise<EventLog>;
  /**
   * Appends events in a transaction that commits only when `commit` is called, for logs where an
   * append can be in flight while later appends commit (Postgres). Absent where the log assigns
   * positions at write time (Kafka).
   */
  appendUncommitted?(events: readonly RelayEvent[]): Promise<{ commit(): Promise<void> }>;
  dispose(): Promise<void>;
}

export interface ContractHarness {
  /** Creates an empty namespace for one test. */
  freshNamespace(): Promise<LogNamespace>;
}

const WAIT_MS = 30_000;

function testEvent(accountId: string, seq: number, occurredAt?: Date): RelayEvent {
  return createEvent('SuppressionAdded', {
    accountId,
    ...(occurredAt ? { occurredAt: occurredAt.toISOString() } : {}),
    data: { address: `user${seq}@example.test`, list: 'bounce', source: 'admin', reason: `seq ${seq}` },
  });
}

const seqOf = (logged: LoggedEvent): number =>
  logged.event.type === 'SuppressionAdded' ? Number(logged.event.data.reason.replace('seq ', '')) : -1;

/** Collects what a subscription delivers; `waitFor` resolves once `count` events have arrived. */
class Collector {
  readonly events: LoggedEvent[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];

  add(batch: readonly LoggedEvent[]): void {
    this.events.push(...batch);
    this.waiters = this.waiters.filter((w) => {
      if (this.events.length < w.count) return true;
      w.resolve();
      return false;
    });
  }

  async waitFor(count: number, timeoutMs = WAIT_MS): Promise<void> {
    if (this.events.length >= count) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out with ${this.events.length} of ${count} events`)),
        timeoutMs,
      );
      this.waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  ids(): string[] {
    return this.events.map((e) => e.event.id);
  }
}

async function subscribeCollector(
  log: EventLog,
  group: string,
  onBatch?: (batch: readonly LoggedEvent[]) => Promise<void>,
): Promise<{ collector: Collector; subscription: Subscription }> {
  const collector = new Collector();
  const subscription = await log.subscribe({
    group,
    handle: async (batch) => {
      collector.add(batch);
      await onBatch?.(batch);
    },
  });
  return { collector, subscription };
}

async function waitUntil(condition: () => boolean, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the condition');
    await sleep(20);
  }
}

/** Fails if anything more arrives within `ms` (used after the expected events are in). */
async function expectQuiet(collector: Collector, count: number, ms = 1500): Promise<void> {
  await sleep(ms);
  expect(collector.events.length).toBe(count);
}

/**
 * The behaviour every EventLog adapter must have. Each adapter's spec calls this with a harness
 * that gives each test its own namespace.
 */
export function eventLogContract(adapterName: string, harness: () => ContractHarness): void {
  describe(`EventLog contract: ${adapterName}`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    const later = (fn: () => Promise<void>): void => {
      cleanups.push(fn);
    };

    afterEach(async () => {
      for (const fn of cleanups.splice(0).reverse()) await fn();
    });

    async function namespace(): Promise<LogNamespace> {
      const ns = await harness().freshNamespace();
      later(() => ns.dispose());
      return ns;
    }

    async function open(ns: LogNamespace): Promise<EventLog> {
      const log = await ns.open();
      let closed = false;
      later(async () => {
        if (!closed) await log.close();
      });
      const close = log.close.bind(log);
      log.close = async () => {
        closed = true;
        await close();
      };
      return log;
    }

    it('keeps the order of events per account, for single and batched appends', async () => {
      const log = await open(await namespace());
      const appended: RelayEvent[] = [];
      for (let i = 0; i < 60; i++) {
        const batch = [testEvent(`acct-${i % 3}`, i)];
        if (i % 4 === 0)
          batch.push(testEvent(`acct-${i % 3}`, 1000 + i), testEvent(`acct-${(i + 1) % 3}`, 2000 + i));
        appended.push(...batch);
        await log.append(batch);
      }
      const { collector } = await subscribeCollector(log, 'order');
      await collector.waitFor(appended.length);
      for (const account of ['acct-0', 'acct-1', 'acct-2']) {
        const want = appended.filter((e) => e.accountId === account).map((e) => e.id);
        const got = collector.events.filter((e) => e.event.accountId === account).map((e) => e.event.id);
        expect(got).toEqual(want);
      }
      expect(new Set(collector.ids()).size).toBe(appended.length);
    });

    it('delivers whole envelopes with positions that sort as strings within a partition', async () => {
      const log = await open(await namespace());
      const events = Array.from({ length: 12 }, (_, i) => testEvent('acct-x', i));
      await log.append(events);
      const { collector } = await subscribeCollector(log, 'envelope');
      await collector.waitFor(events.length);
      expect(collector.events.map((e) => e.event)).toEqual(events);
      const offsets = collector.events.map((e) => e.position.offset);
      expect([...offsets].sort()).toEqual(offsets);
      expect(new Set(offsets).size).toBe(offsets.length);
    });

    it('resumes a group from its committed position after a restart', async () => {
      const ns = await namespace();
      const first = await open(ns);
      await first.append(Array.from({ length: 10 }, (_, i) => testEvent(`acct-${i % 2}`, i)));
      const run1 = await subscribeCollector(first, 'resume');
      await run1.collector.waitFor(10);
      await run1.subscription.stop();
      await first.close();

      const second = await open(ns);
      await second.append(Array.from({ length: 5 }, (_, i) => testEvent(`acct-${i % 2}`, 100 + i)));
      const run2 = await subscribeCollector(second, 'resume');
      await run2.collector.waitFor(5);
      await expectQuiet(run2.collector, 5);
      expect(run2.collector.events.map(seqOf).sort((a, b) => a - b)).toEqual([100, 101, 102, 103, 104]);

      // A new group still starts from the beginning.
      const other = await subscribeCollector(second, 'resume-other');
      await other.collector.waitFor(15);
    });

    it('hands a group only the types it takes, and moves its position past the others', async () => {
      const ns = await namespace();
      const first = await open(ns);
      const plan = (seq: number): RelayEvent =>
        createEvent('AccountPlanChanged', {
          accountId: 'acct-t',
          data: { monthlyMessageLimit: seq, monthlyByteLimit: null, overageAllowed: false },
        });
      await first.append([testEvent('acct-t', 0), plan(1), testEvent('acct-t', 2), plan(3)]);
      const taken: LoggedEvent[] = [];
      const run1 = await first.subscribe({
        group: 'typed',
        types: ['AccountPlanChanged'],
        handle: async (batch) => {
          taken.push(...batch);
        },
      });
      await waitUntil(() => taken.length >= 2);
      await run1.stop();
      await first.close();
      expect(taken.map((l) => l.event.type)).toEqual(['AccountPlanChanged', 'AccountPlanChanged']);

      // After a restart nothing comes again: the skipped events were passed, not left behind.
      const second = await open(ns);
      await second.append([testEvent('acct-t', 4), plan(5)]);
      const again: LoggedEvent[] = [];
      await second.subscribe({
        group: 'typed',
        types: ['AccountPlanChanged'],
        handle: async (batch) => {
          again.push(...batch);
        },
      });
      await waitUntil(() => again.length >= 1);
      await sleep(1000);
      expect(
        again.map((l) => (l.event.type === 'AccountPlanChanged' ? l.event.data.monthlyMessageLimit : -1)),
      ).toEqual([5]);
    });

    it('redelivers a batch whose handler failed after handling (at least once)', async () => {
      const log = await open(await namespace());
      await log.append(Array.from({ length: 8 }, (_, i) => testEvent('acct-r', i)));
      let failed: number[] | undefined;
      const { collector } = await subscribeCollector(log, 'redeliver', async (batch) => {
        if (failed) return;
        failed = batch.map(seqOf);
        throw new Error('crash between handling and commit');
      });
      await waitUntil(() => failed !== undefined && collector.events.length >= 8 + failed.length);
      await expectQuiet(collector, 8 + (failed?.length ?? 0), 500);
      const seen = collector.events.map(seqOf);
      // The failed batch comes again, then everything after it, in order.
      expect(seen).toEqual([...(failed ?? []), 0, 1, 2, 3, 4, 5, 6, 7]);
    });

    it('redelivers after a process stops between handling and commit', async () => {
      const ns = await namespace();
      const first = await open(ns);
      await first.append(Array.from({ length: 6 }, (_, i) => testEvent('acct-c', i)));
      const run1 = await subscribeCollector(first, 'crash', async () => {
        throw new Error('process dies before commit');
      });
      await run1.collector.waitFor(6);
      await first.close();

      const second = await open(ns);
      const run2 = await subscribeCollector(second, 'crash');
      await run2.collector.waitFor(6);
      expect(run2.collector.events.map(seqOf)).toEqual([0, 1, 2, 3, 4, 5]);
    });

    it('never skips an event when concurrent appends commit out of order', async () => {
      const ns = await namespace();
      const log = await open(ns);
      const { collector } = await subscribeCollector(log, 'gaps');

      let expected = 0;
      if (ns.appendUncommitted) {
        // The first append takes its position, then waits; a later append commits first.
        const held = await ns.appendUncommitted([testEvent('acct-g', 0)]);
        await log.append([testEvent('acct-g', 1)]);
        await sleep(300);
        await held.commit();
        expected += 2;
        await collector.waitFor(expected);
        expect(collector.events.map(seqOf).sort((a, b) => a - b)).toEqual([0, 1]);
      }

      // Many appenders at once, single and batched, while the consumer reads.
      const appenders = Array.from({ length: 16 }, async (_, worker) => {
        for (let i = 0; i < 25; i++) {
          const seq = 10_000 + worker * 100 + i;
          await log.append(
            i % 5 === 0
              ? [testEvent(`acct-${worker}`, seq), testEvent(`acct-${worker}`, seq + 50)]
              : [testEvent(`acct-${worker}`, seq)],
          );
        }
      });
      await Promise.all(appenders);
      expected += 16 * 30;
      await collector.waitFor(expected);
      await expectQuiet(collector, expected, 500);
      expect(new Set(collector.ids()).size).toBe(expected);
    });

    describe('a projector that stores its position with its change', () => {
      let db: TestDatabase;
      let pool: pg.Pool;

      beforeAll(async () => {
        db = await createTestDatabase('contract_projection');
        pool = new pg.Pool({ connectionString: db.url, max: 2 });
        await pool.query(`CREATE TABLE contract_counts (account_id text PRIMARY KEY, n int NOT NULL)`);
        await pool.query(
          `CREATE TABLE contract_positions (partition int PRIMARY KEY, log_offset text NOT NULL)`,
        );
      });
      afterAll(async () => {
        await pool.end();
        await db.drop();
      });

      it('applies each event exactly once even when the log redelivers', async () => {
        const log = await open(await namespace());
        const events = Array.from({ length: 40 }, (_, i) => testEvent(`acct-p${i % 4}`, i));
        await log.append(events);
        let crashesLeft = 2;
        let applied = 0;
        let delivered = 0;
        await log.subscribe({
          group: 'projector',
          maxBatchSize: 7,
          handle: async (batch) => {
            delivered += batch.length;
            const client = await pool.connect();
            try {
              await client.query('BEGIN');
              for (const { event, position } of batch) {
                const row = await client.query<{ log_offset: string }>(
                  'SELECT log_offset FROM contract_positions WHERE partition = $1 FOR UPDATE',
                  [position.partition],
                );
                const last = row.rows[0]?.log_offset;
                if (last !== undefined && position.offset <= last) continue;
                await client.query(
                  `INSERT INTO contract_counts VALUES ($1, 1)
                   ON CONFLICT (account_id) DO UPDATE SET n = contract_counts.n + 1`,
                  [event.accountId],
                );
                await client.query(
                  `INSERT INTO contract_positions VALUES ($1, $2)
                   ON CONFLICT (partition) DO UPDATE SET log_offset = EXCLUDED.log_offset`,
                  [position.partition, position.offset],
                );
                applied++;
              }
              await client.query('COMMIT');
            } catch (error) {
              await client.query('ROLLBACK');
              throw error;
            } finally {
              client.release();
            }
            // The projector committed, but the log position is not: the log must redeliver.
            if (crashesLeft-- > 0) throw new Error('crash after the projector committed');
          },
        });
        await waitUntil(() => applied >= events.length && crashesLeft < 0);
        await sleep(1000);
        const counts = await pool.query<{ account_id: string; n: number }>(
          'SELECT account_id, n FROM contract_counts ORDER BY account_id',
        );
        expect(counts.rows).toEqual([
          { account_id: 'acct-p0', n: 10 },
          { account_id: 'acct-p1', n: 10 },
          { account_id: 'acct-p2', n: 10 },
          { account_id: 'acct-p3', n: 10 },
        ]);
        expect(applied).toBe(events.length);
        // The crashes made the log deliver some events twice; the projector applied them once.
        expect(delivered).toBeGreaterThan(events.length);
      });
    });

    it('replays exactly the events of a time range, with account and type filters', async () => {
      const log = await open(await namespace());
      // Recent enough for any retention (Kafka deletes records older than the topic's retention).
      const t0 = Date.now() - 3 * 3_600_000;
      const at = (minutes: number): Date => new Date(t0 + minutes * 60_000);
      const events = [
        testEvent('acct-a', 1, at(-120)),
        testEvent('acct-a', 2, at(-60)), // == from: included
        testEvent('acct-b', 3, at(-30)),
        testEvent('acct-a', 4, at(-1)),
        createEvent('AccountPlanChanged', {
          accountId: 'acct-a',
          occurredAt: at(-10).toISOString(),
          data: { monthlyMessageLimit: 5, monthlyByteLimit: null, overageAllowed: false },
        }),
        testEvent('acct-a', 5, at(0)), // == to: excluded
        testEvent('acct-b', 6, at(30)),
      ];
      await log.append(events);
      const read = async (range: Parameters<EventLog['readRange']>[0]): Promise<string[]> => {
        const ids: string[] = [];
        for await (const logged of log.readRange(range)) ids.push(logged.event.id);
        return ids.sort();
      };
      const idsOf = (...picked: RelayEvent[]): string[] => picked.map((e) => e.id).sort();
      const [, e2, e3, e4, plan] = events as [RelayEvent, RelayEvent, RelayEvent, RelayEvent, RelayEvent];

      expect(await read({ from: at(-60), to: at(0) })).toEqual(idsOf(e2, e3, e4, plan));
      expect(await read({ from: at(-60), to: at(0), accountId: 'acct-a' })).toEqual(idsOf(e2, e4, plan));
      expect(await read({ from: at(-60), to: at(0), types: ['AccountPlanChanged'] })).toEqual(idsOf(plan));
      expect(await read({ from: at(60), to: at(120) })).toEqual([]);
    });
  });
}
