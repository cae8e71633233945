import { randomUUID } from 'node:crypto';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { createEvent, newRelayMessageId, type MessageReceived } from '@relay/domain';
import { KafkaEventLog, PostgresEventLog, type EventLog, type EventLogLogger } from '@relay/event-log';
import {
  TEST_KAFKA_BROKERS,
  createTestDatabase,
  ensureKafkaBroker,
  prepareTemplateDatabase,
} from '@relay/testing';

/**
 * `npm run bench:log`: append throughput and append-to-consumer latency of both event-log adapters,
 * each on a log of its own (a fresh database, a fresh topic). Progress goes to stderr; the table
 * and one JSON line per adapter go to stdout. BENCH_LOG_SCALE (0 < s <= 1) shrinks every count and
 * the latency run, for a quick smoke run.
 */

const SCALE = benchScale();
const EVENT_BYTES = 1_024;
const THROUGHPUT_EVENTS = Math.round(100_000 * SCALE);
const BATCH_SIZE = 500;
/** Like SMTP sessions: each caller appends one MessageReceived and waits for it before the next. */
const CONCURRENT_CALLERS = 64;
const SEQUENTIAL_EVENTS = Math.round(5_000 * SCALE);
const LATENCY_RATE_PER_S = 1_000;
const LATENCY_DURATION_MS = Math.round(20_000 * SCALE);
/** Accounts the events are spread over; the account is the Kafka partition key. */
const ACCOUNTS = 64;

/** A phase stops starting appends after this; a phase that still has not finished then fails. */
const PHASE_CAP_MS = 60_000;
const PHASE_GRACE_MS = 30_000;
const PROBE_TIMEOUT_MS = 30_000;
/** After the paced appender stops, events still on their way get this long to arrive. */
const LATENCY_DRAIN_MS = 15_000;
/** Last resort if a close() hangs: the run never outlives this. */
const RUN_CAP_MS = 10 * 60_000;

const stderrLogger: EventLogLogger = {
  info: (message) => progress(message),
  warn: (message, fields) => progress(`warn: ${message} ${fields ? JSON.stringify(fields) : ''}`),
  error: (message, fields) => progress(`error: ${message} ${fields ? JSON.stringify(fields) : ''}`),
};

function progress(line: string): void {
  process.stderr.write(`[bench:log ${new Date().toISOString().slice(11, 23)}] ${line}\n`);
}

function benchScale(): number {
  const raw = process.env.BENCH_LOG_SCALE;
  if (raw === undefined || raw === '') return 1;
  const scale = Number(raw);
  if (!(scale > 0 && scale <= 1)) throw new Error(`BENCH_LOG_SCALE must be in (0, 1], got "${raw}"`);
  return scale;
}

interface Throughput {
  readonly events: number;
  readonly seconds: number;
  readonly perSecond: number;
  /** True when the phase hit PHASE_CAP_MS before appending all its events. */
  readonly capped: boolean;
  /** CPU time of this process (user + system) over wall time: near 100 means the client is the limit. */
  readonly benchCpuPercent: number;
}

interface Latency {
  readonly ratePerSecond: number;
  readonly seconds: number;
  readonly sent: number;
  readonly delivered: number;
  readonly appendErrors: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Most events the pacer had to send in one tick because it woke late (a sign of a busy box). */
  readonly maxBurst: number;
  /** This process's event-loop delay while pacing: a latency tail that matches it is the box, not the log. */
  readonly loopDelayP99Ms: number;
  readonly loopDelayMaxMs: number;
}

interface AdapterResult {
  readonly adapter: string;
  readonly eventBytes: number;
  batched?: Throughput & { readonly perAppend: number };
  concurrentSingle?: Throughput & { readonly callers: number };
  sequentialSingle?: Throughput;
  latency?: Latency;
  error?: string;
}

/** An isolated log on one adapter; `dispose` removes what `open` created. */
interface Bench {
  readonly log: EventLog;
  dispose(): Promise<void>;
}

/**
 * Realistic MessageReceived events of one size: every variable field has a fixed width, and the
 * subject is padded so that the JSON envelope is EVENT_BYTES long.
 */
class EventFactory {
  private readonly accounts = Array.from({ length: ACCOUNTS }, () => randomUUID());
  private readonly subject: string;
  private seq = 0;

  constructor() {
    const prefix = 'Your order 4711-0815 has shipped: tracking number, delivery window and invoice. ';
    const unpadded = Buffer.byteLength(JSON.stringify(this.build(prefix)));
    const filler = 'Thank you for shopping with us; reply to this message if anything looks wrong. ';
    this.subject = (prefix + filler.repeat(Math.ceil(EVENT_BYTES / filler.length))).slice(
      0,
      prefix.length + Math.max(0, EVENT_BYTES - unpadded),
    );
  }

  next(): MessageReceived {
    return this.build(this.subject);
  }

  sampleBytes(): number {
    return Buffer.byteLength(JSON.stringify(this.next()));
  }

  private build(subject: string): MessageReceived {
    const seq = this.seq++;
    const now = new Date();
    const relayId = newRelayMessageId(now.getTime());
    return createEvent('MessageReceived', {
      accountId: this.accounts[seq % ACCOUNTS]!,
      messageId: relayId,
      occurredAt: now.toISOString(),
      data: {
        mailFrom: 'bounces@mail.shop.example',
        recipients: [`customer-${String(seq % 1_000_000).padStart(6, '0')}@example.net`],
        from: 'orders@shop.example',
        fromName: 'Example Shop',
        subject,
        headerMessageId: `${relayId}@mail.shop.example`,
        size: 18_432,
        spoolKey: `${now.toISOString().slice(0, 10)}/${relayId}`,
        clientIp: '203.0.113.24',
        auth: 'smtp-auth',
        username: 'shop-mailer',
        tls: true,
        smtpUtf8: false,
        eightBitMime: true,
      },
    });
  }
}

/** Fails if `work` has not settled within `ms`; `work` is then left to settle on its own. */
async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
    work.catch(() => undefined);
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() >= deadline) return false;
    await sleep(5);
  }
  return true;
}

/**
 * `callers` concurrent loops, each appending `perAppend` events per call and awaiting it before
 * the next, until `total` events are appended or the phase cap passes. Timed to the last ack.
 */
async function appendLoad(
  log: EventLog,
  events: EventFactory,
  load: { readonly total: number; readonly perAppend: number; readonly callers: number },
): Promise<Throughput> {
  let claimed = 0;
  let appended = 0;
  let failed = false;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const stopAt = started + PHASE_CAP_MS;
  const caller = async (): Promise<void> => {
    while (!failed && claimed < load.total && performance.now() < stopAt) {
      const count = Math.min(load.perAppend, load.total - claimed);
      claimed += count;
      const batch = Array.from({ length: count }, () => events.next());
      try {
        await log.append(batch);
      } catch (error) {
        failed = true;
        throw error;
      }
      appended += count;
    }
  };
  await within(
    PHASE_CAP_MS + PHASE_GRACE_MS,
    'append phase',
    Promise.all(Array.from({ length: load.callers }, caller)),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    events: appended,
    seconds,
    perSecond: appended / seconds,
    capped: appended < load.total,
    benchCpuPercent: Math.round((cpu.user + cpu.system) / 1e4 / seconds),
  };
}

/** Nearest-rank percentile of ascending `sorted`. */
function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * A paced appender (single-event appends, not awaited one by one: SMTP sessions do not wait for
 * each other) and a subscriber in a fresh group; latency is handle time minus append call time.
 */
async function measureLatency(log: EventLog, events: EventFactory, group: string): Promise<Latency> {
  const appendedAt = new Map<string, number>();
  const latencies: number[] = [];
  const probe = events.next();
  let probeSeen = false;
  const subscription = await log.subscribe({
    group,
    handle: async (batch) => {
      const now = performance.now();
      for (const { event } of batch) {
        if (event.id === probe.id) probeSeen = true;
        const at = appendedAt.get(event.id);
        if (at === undefined) continue;
        appendedAt.delete(event.id);
        latencies.push(now - at);
      }
    },
  });
  try {
    // The group is live (joined, partitions assigned) once a first event comes through.
    await log.append([probe]);
    if (!(await waitUntil(() => probeSeen, PROBE_TIMEOUT_MS))) {
      throw new Error(`the subscriber did not receive a probe event within ${PROBE_TIMEOUT_MS} ms`);
    }

    const total = Math.round((LATENCY_RATE_PER_S * LATENCY_DURATION_MS) / 1000);
    const inFlight = new Set<Promise<void>>();
    let sent = 0;
    let appendErrors = 0;
    let maxBurst = 0;
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const started = performance.now();
    const stopAt = started + LATENCY_DURATION_MS + PHASE_CAP_MS;
    while (sent < total && performance.now() < stopAt) {
      const due = Math.min(
        total,
        Math.floor(((performance.now() - started) * LATENCY_RATE_PER_S) / 1000) + 1,
      );
      maxBurst = Math.max(maxBurst, due - sent);
      for (; sent < due; sent++) {
        const event = events.next();
        appendedAt.set(event.id, performance.now());
        const append: Promise<void> = log.append([event]).then(
          () => {
            inFlight.delete(append);
          },
          () => {
            appendErrors++;
            appendedAt.delete(event.id);
            inFlight.delete(append);
          },
        );
        inFlight.add(append);
      }
      await sleep(1);
    }
    const seconds = (performance.now() - started) / 1000;
    loopDelay.disable();
    await within(PHASE_GRACE_MS, 'paced appends', Promise.all(inFlight));
    await waitUntil(() => appendedAt.size === 0, LATENCY_DRAIN_MS);

    const sorted = latencies.sort((a, b) => a - b);
    return {
      ratePerSecond: LATENCY_RATE_PER_S,
      seconds,
      sent,
      delivered: sorted.length,
      appendErrors,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      maxMs: sorted.at(-1) ?? Number.NaN,
      maxBurst,
      loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      loopDelayMaxMs: loopDelay.max / 1e6,
    };
  } finally {
    await subscription.stop();
  }
}

async function runAdapter(adapter: string, open: () => Promise<Bench>): Promise<AdapterResult> {
  const events = new EventFactory();
  const result: AdapterResult = { adapter, eventBytes: events.sampleBytes() };
  let bench: Bench | undefined;
  try {
    progress(`${adapter}: setting up`);
    bench = await open();
    const { log } = bench;
    // First, while the log is empty: a fresh group starts from the start of the log.
    progress(`${adapter}: latency at ${LATENCY_RATE_PER_S} events/s for ${LATENCY_DURATION_MS / 1000} s`);
    result.latency = await measureLatency(log, events, `bench-latency-${randomUUID()}`);
    progress(`${adapter}: ${THROUGHPUT_EVENTS} events in appends of ${BATCH_SIZE}`);
    result.batched = {
      ...(await appendLoad(log, events, { total: THROUGHPUT_EVENTS, perAppend: BATCH_SIZE, callers: 1 })),
      perAppend: BATCH_SIZE,
    };
    progress(`${adapter}: ${THROUGHPUT_EVENTS} single-event appends from ${CONCURRENT_CALLERS} callers`);
    result.concurrentSingle = {
      ...(await appendLoad(log, events, {
        total: THROUGHPUT_EVENTS,
        perAppend: 1,
        callers: CONCURRENT_CALLERS,
      })),
      callers: CONCURRENT_CALLERS,
    };
    progress(`${adapter}: ${SEQUENTIAL_EVENTS} single-event appends, one at a time`);
    result.sequentialSingle = await appendLoad(log, events, {
      total: SEQUENTIAL_EVENTS,
      perAppend: 1,
      callers: 1,
    });
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
    progress(`${adapter}: failed: ${result.error}`);
  } finally {
    progress(`${adapter}: cleaning up`);
    await bench
      ?.dispose()
      .catch((error: unknown) => progress(`${adapter}: cleanup failed: ${String(error)}`));
  }
  return result;
}

async function openPostgres(): Promise<Bench> {
  const dropTemplate = await prepareTemplateDatabase();
  try {
    const db = await createTestDatabase('bench_log');
    try {
      const log = await PostgresEventLog.connect({
        url: db.url,
        applicationName: 'relay-bench',
        logger: stderrLogger,
      });
      return {
        log,
        dispose: async () => {
          try {
            await log.close();
          } finally {
            await db.drop();
            await dropTemplate();
          }
        },
      };
    } catch (error) {
      await db.drop();
      throw error;
    }
  } catch (error) {
    await dropTemplate();
    throw error;
  }
}

async function openKafka(): Promise<Bench> {
  const stopBroker = await ensureKafkaBroker();
  const topic = `bench.event-log.${randomUUID()}`;
  const groupIdPrefix = `${topic}.`;
  const removeTopic = async (): Promise<void> => {
    const admin = new Kafka({
      clientId: 'relay-bench-admin',
      brokers: TEST_KAFKA_BROKERS,
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      const { groups } = await admin.listGroups();
      const ours = groups.map((g) => g.groupId).filter((id) => id.startsWith(groupIdPrefix));
      if (ours.length > 0) await admin.deleteGroups(ours);
      await admin.deleteTopics({ topics: [topic] });
    } finally {
      await admin.disconnect();
    }
  };
  try {
    // The adapter's defaults (6 partitions, idempotent producer, acks=all), on a topic of its own.
    const log = await KafkaEventLog.connect({
      brokers: TEST_KAFKA_BROKERS,
      topic,
      replicationFactor: 1,
      clientId: 'relay-bench',
      groupIdPrefix,
      logger: stderrLogger,
    });
    return {
      log,
      dispose: async () => {
        try {
          await log.close();
          await removeTopic();
        } finally {
          await stopBroker();
        }
      },
    };
  } catch (error) {
    await removeTopic().catch(() => undefined);
    await stopBroker();
    throw error;
  }
}

function rate(throughput: Throughput | undefined): string {
  if (!throughput) return 'n/a';
  const value = Math.round(throughput.perSecond).toLocaleString('en-US');
  return throughput.capped ? `${value} (capped at ${throughput.events} events)` : value;
}

function ms(value: number | undefined): string {
  return value === undefined || Number.isNaN(value) ? 'n/a' : value.toFixed(1);
}

/** The adapter's name, with what would make its figures look better than they are. */
function adapterCell(result: AdapterResult): string {
  if (result.error) return `${result.adapter} (failed: ${result.error})`;
  const latency = result.latency;
  if (!latency) return result.adapter;
  const notes: string[] = [];
  if (latency.appendErrors > 0) notes.push(`${latency.appendErrors} paced appends failed`);
  const missing = latency.sent - latency.appendErrors - latency.delivered;
  if (missing > 0) notes.push(`${missing} paced events never delivered`);
  return notes.length > 0 ? `${result.adapter} (${notes.join(', ')})` : result.adapter;
}

function printTable(results: readonly AdapterResult[]): void {
  const rows = results.map((r) => [
    adapterCell(r),
    rate(r.batched),
    rate(r.concurrentSingle),
    rate(r.sequentialSingle),
    ms(r.latency?.p50Ms),
    ms(r.latency?.p99Ms),
    ms(r.latency?.maxMs),
  ]);
  const header = [
    'adapter',
    'batched events/s',
    'concurrent single events/s',
    'sequential single events/s',
    'p50 ms',
    'p99 ms',
    'max ms',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`;
  const bytes = results[0]?.eventBytes ?? EVENT_BYTES;
  const out = [
    `Event log benchmark: MessageReceived events of ${bytes} bytes (JSON), ${ACCOUNTS} accounts.`,
    `batched: ${THROUGHPUT_EVENTS} events, appends of ${BATCH_SIZE}, one caller; ` +
      `concurrent single: ${THROUGHPUT_EVENTS} one-event appends from ${CONCURRENT_CALLERS} callers; ` +
      `sequential single: ${SEQUENTIAL_EVENTS} one-event appends, one at a time; ` +
      `latency: append call to handler, ${LATENCY_RATE_PER_S} events/s for ${LATENCY_DURATION_MS / 1000} s, fresh group.`,
    '',
    line(header),
    `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...rows.map(line),
    '',
    ...results.map((r) => JSON.stringify(r)),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    progress(`the run exceeded ${RUN_CAP_MS / 1000} s; exiting without cleaning up`);
    process.exit(2);
  }, RUN_CAP_MS);
  watchdog.unref();
  const started = performance.now();
  const results = [await runAdapter('postgres', openPostgres), await runAdapter('kafka', openKafka)];
  printTable(results);
  progress(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (results.some((r) => r.error !== undefined)) process.exitCode = 1;
}

await main();
