import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { TEST_KAFKA_BROKERS } from '@relay/testing';
import {
  type ChildRelay,
  cpuSecondsOf,
  deleteKafkaTopic,
  envNumber,
  kbToMb,
  machineCpu,
  markdownTable,
  memoryOf,
  prepareTemplateAndKafka,
  progressOf,
  readyFields,
  readyLineOf,
  round,
  startWatchdog,
  stopRelayChild,
  useDataRoot,
} from './bench-support.js';
import {
  deliver,
  largeMessage,
  percentile,
  runLoad,
  smallMessage,
  type LoadResult,
} from './ingress-smtp-load.js';

/**
 * `npm run bench:ingress` (issue 3, point 10). For each event-log adapter, Postgres then Kafka, it
 * starts the whole relay in a child process (ingress-relay-process.ts) and measures:
 *
 *  1. 20 parallel sessions, one 5 KB message per connection, for BENCH_SECONDS [20] (at most
 *     BENCH_MAX_MESSAGES [50 000]) after a short warm-up: accepted messages/s, p50/p99 of the
 *     time from the final "." to the 250, and the relay's CPU time per accepted message.
 *  2. The relay process's peak RSS while 4 sessions each send a 30 MB body at once (VmHWM, reset
 *     just before through /proc/<pid>/clear_refs, and VmRSS polled meanwhile).
 *
 * The relay runs the smtp-ingress and admin-api roles (the account is made through the API), so no
 * worker tries to deliver what is accepted, and logs at the product's default level, info.
 *
 * Prints a table and one JSON line per adapter to stdout, progress to stderr. BENCH_CPU_PROF=1 runs
 * the relay under `node --cpu-prof` and keeps the profiles; BENCH_KEEP=1 keeps the relay logs.
 */

const SESSIONS = 20;
const SMALL_MESSAGE_OCTETS = 5 * 1024;
const DURATION_MS = envNumber('BENCH_SECONDS', 20) * 1000;
const MAX_MESSAGES = envNumber('BENCH_MAX_MESSAGES', 50_000);
const WARMUP_MS = 2_000;
const WARMUP_MAX_MESSAGES = 1_000;
const LARGE_SESSIONS = 4;
/** 30 MB of body; with its headers still under the default MAX_MESSAGE_SIZE of 31 457 280. */
const LARGE_BODY_OCTETS = 30_000_000;
const IDLE_TIMEOUT_MS = 60_000;
const RSS_POLL_MS = 20;

const RELAY_ENTRY = fileURLToPath(new URL('./ingress-relay-process.js', import.meta.url));
const TARGETS = { kafkaMessagesPerSecond: 1000, p99Ms: 50, peakRssMb: 400 };

type Adapter = 'postgres' | 'kafka';

interface AdapterResult {
  readonly bench: 'ingress';
  readonly adapter: Adapter;
  readonly status: 'ok' | 'failed';
  readonly error?: string;
  readonly acceptedPerSecond?: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly peakRssMb?: number;
  /**
   * The relay process's CPU time (all its threads) per accepted message: unlike msg/s, it does not
   * move with what else the machine runs, so it compares code across runs and days.
   */
  readonly relayCpuMsPerMessage?: number;
  readonly details?: Record<string, unknown>;
}

interface RelayChild extends ChildRelay {
  readonly smtpPort: number;
  readonly adminUrl: string;
}

const progress = progressOf('bench:ingress');

async function startRelayChild(
  adapter: Adapter,
  config: Record<string, string>,
  logPath: string,
  profileDir: string | undefined,
): Promise<RelayChild> {
  const logFd = openSync(logPath, 'a');
  const nodeArgs = profileDir
    ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=relay-${adapter}.cpuprofile`]
    : [];
  const args = [...nodeArgs, RELAY_ENTRY, ...Object.entries(config).map(([k, v]) => `${k}=${v}`)];
  // stdin stays an open pipe: the relay stops by itself when this process goes away.
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', logFd] });
  closeSync(logFd);
  if (child.pid === undefined || !child.stdout) throw new Error('could not spawn the relay process');
  const relay = { process: child, pid: child.pid };
  const parse = (line: string) => readyFields(line, 'adminUrl');
  return { ...relay, ...(await readyLineOf(relay, child.stdout, parse, logPath, progress)) };
}

/** The relay's Prometheus samples, by name with labels; empty when /metrics does not answer. */
async function scrapeMetrics(relay: RelayChild): Promise<Map<string, number>> {
  const samples = new Map<string, number>();
  try {
    const response = await fetch(`${relay.adminUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
    for (const line of (await response.text()).split('\n')) {
      const match = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
      if (match?.[1] && match[2]) samples.set(match[1], Number(match[2]));
    }
  } catch (error) {
    progress(`could not read ${relay.adminUrl}/metrics: ${String(error)}`);
  }
  return samples;
}

/** Sum of the samples whose name (before any labels) is `name`. */
function metricSum(samples: Map<string, number>, name: string): number {
  let sum = 0;
  for (const [key, value] of samples) if (key === name || key.startsWith(`${name}{`)) sum += value;
  return sum;
}

/**
 * What the relay's own metrics say about a phase (`before` scraped at its start): the event-log
 * append's share of DATA-end-to-250, event-loop delay and GC. prom-client's event-loop histogram
 * restarts at every scrape, so its figures cover the phase only.
 */
function relayMetricsOfPhase(
  before: Map<string, number>,
  after: Map<string, number>,
): Record<string, unknown> {
  if (after.size === 0) return {};
  const delta = (name: string): number => metricSum(after, name) - metricSum(before, name);
  const appends = delta('relay_ingress_append_seconds_count');
  // The smallest bucket bound that holds 99% of the phase's appends.
  const bounds = [...after.keys()]
    .map((key) => /^relay_ingress_append_seconds_bucket\{le="([^"]+)"\}$/.exec(key)?.[1])
    .filter((le): le is string => le !== undefined && le !== '+Inf');
  const appendP99Bound = bounds
    .map((le) => ({ le: Number(le), count: delta(`relay_ingress_append_seconds_bucket{le="${le}"}`) }))
    .sort((a, b) => a.le - b.le)
    .find((bucket) => bucket.count >= 0.99 * appends)?.le;
  return {
    appendMeanMs: appends > 0 ? round((1000 * delta('relay_ingress_append_seconds_sum')) / appends, 2) : null,
    appendP99AtMostMs: appendP99Bound === undefined ? null : appendP99Bound * 1000,
    eventLoopDelayP99Ms: round(1000 * metricSum(after, 'relay_nodejs_eventloop_lag_p99_seconds')),
    eventLoopDelayMaxMs: round(1000 * metricSum(after, 'relay_nodejs_eventloop_lag_max_seconds')),
    gcSeconds: round(delta('relay_nodejs_gc_duration_seconds_sum'), 2),
  };
}

function summarise(load: LoadResult): Record<string, unknown> {
  return {
    attempted: load.attempted,
    accepted: load.accepted,
    seconds: round(load.elapsedMs / 1000, 2),
    failures: load.failures,
  };
}

/** 20 sessions of 5 KB messages: rate and latency, with the relay's CPU meanwhile. */
async function measureThroughput(relay: RelayChild): Promise<Record<string, unknown> & { load: LoadResult }> {
  const content = smallMessage(SMALL_MESSAGE_OCTETS);
  const base = { port: relay.smtpPort, sessions: SESSIONS, content, idleTimeoutMs: IDLE_TIMEOUT_MS };
  progress(`warm-up: ${WARMUP_MS / 1000} s`);
  const warmup = await runLoad({ ...base, durationMs: WARMUP_MS, maxMessages: WARMUP_MAX_MESSAGES });
  progress(
    `${SESSIONS} sessions x ${content.octets} octets for ${DURATION_MS / 1000} s (cap ${MAX_MESSAGES})`,
  );
  const metrics0 = await scrapeMetrics(relay);
  const [relayCpu0, machine0, own0] = [await cpuSecondsOf(relay.pid), await machineCpu(), process.cpuUsage()];
  const load = await runLoad({ ...base, durationMs: DURATION_MS, maxMessages: MAX_MESSAGES });
  const [relayCpu1, machine1, own] = [
    await cpuSecondsOf(relay.pid),
    await machineCpu(),
    process.cpuUsage(own0),
  ];
  const metrics1 = await scrapeMetrics(relay);
  const seconds = load.elapsedMs / 1000;
  return {
    load,
    messageOctets: content.octets,
    warmup: summarise(warmup),
    measured: summarise(load),
    relayCpuPercentOfOneCore: round((100 * (relayCpu1 - relayCpu0)) / seconds),
    relayCpuMsPerMessage:
      load.accepted > 0 ? round((1000 * (relayCpu1 - relayCpu0)) / load.accepted, 2) : null,
    generatorCpuPercentOfOneCore: round((own.user + own.system) / 1e4 / seconds),
    machineCpuBusyPercent: round((100 * (machine1.busy - machine0.busy)) / (machine1.total - machine0.total)),
    relayMetrics: relayMetricsOfPhase(metrics0, metrics1),
  };
}

/** 4 sessions of 30 MB at once: the relay's peak RSS meanwhile. */
async function measureLargeMessages(
  relay: RelayChild,
): Promise<Record<string, unknown> & { peakRssMb: number }> {
  const content = largeMessage(LARGE_BODY_OCTETS);
  const before = await memoryOf(relay.pid);
  // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0), so the peak is this phase's.
  const hwmReset = await writeFile(`/proc/${relay.pid}/clear_refs`, '5').then(
    () => true,
    () => false,
  );
  progress(
    `${LARGE_SESSIONS} sessions x ${content.octets} octets at once (RSS before: ${kbToMb(before.rssKb)} MB)`,
  );
  let polledPeakKb = before.rssKb;
  let polling = true;
  const poller = (async () => {
    while (polling) {
      polledPeakKb = Math.max(polledPeakKb, (await memoryOf(relay.pid)).rssKb);
      await sleep(RSS_POLL_MS);
    }
  })();
  const started = performance.now();
  const results = await Promise.allSettled(
    Array.from({ length: LARGE_SESSIONS }, () => deliver(relay.smtpPort, content, IDLE_TIMEOUT_MS)),
  );
  const seconds = (performance.now() - started) / 1000;
  polling = false;
  await poller;
  const after = await memoryOf(relay.pid);
  const peakKb = Math.max(polledPeakKb, hwmReset ? after.hwmKb : 0);
  const replies = results.map((r) =>
    r.status === 'fulfilled' ? r.value.reply.replace(/queued as \S+/, 'queued as <id>') : String(r.reason),
  );
  const accepted = results.filter((r) => r.status === 'fulfilled' && r.value.reply.startsWith('250')).length;
  return {
    peakRssMb: kbToMb(peakKb),
    messageOctets: content.octets,
    accepted,
    replies: [...new Set(replies)],
    seconds: round(seconds, 2),
    dataEndTo250Ms: results.map((r) => (r.status === 'fulfilled' ? round(r.value.latencyMs) : null)),
    rssBeforeMb: kbToMb(before.rssKb),
    rssAfterMb: kbToMb(after.rssKb),
    polledPeakRssMb: kbToMb(polledPeakKb),
    peakSource: hwmReset ? 'VmHWM (reset before the phase) and VmRSS polled' : 'VmRSS polled',
  };
}

async function benchAdapter(
  adapter: Adapter,
  config: Record<string, string>,
  scratch: string,
  profileDir: string | undefined,
  track: (child: RelayChild | undefined) => void,
): Promise<AdapterResult> {
  const logPath = join(scratch, `relay-${adapter}.log`);
  progress(`${adapter}: starting the relay (log: ${logPath})`);
  const relay = await startRelayChild(adapter, config, logPath, profileDir);
  track(relay);
  try {
    const startupPeak = await memoryOf(relay.pid);
    const throughput = await measureThroughput(relay);
    const peakAfterThroughput = await memoryOf(relay.pid);
    const large = await measureLargeMessages(relay);
    const { load, relayCpuMsPerMessage, ...throughputDetails } = throughput;
    const failed = load.accepted === 0 || large.accepted !== LARGE_SESSIONS;
    return {
      bench: 'ingress',
      adapter,
      status: failed ? 'failed' : 'ok',
      ...(failed ? { error: 'messages were refused; see details' } : {}),
      acceptedPerSecond: round(load.accepted / (load.elapsedMs / 1000)),
      p50Ms: round(percentile(load.latenciesMs, 50), 2),
      p99Ms: round(percentile(load.latenciesMs, 99), 2),
      peakRssMb: large.peakRssMb,
      ...(typeof relayCpuMsPerMessage === 'number' ? { relayCpuMsPerMessage } : {}),
      details: {
        relayPid: relay.pid,
        sessions: SESSIONS,
        maxMs: round(percentile(load.latenciesMs, 100), 2),
        p90Ms: round(percentile(load.latenciesMs, 90), 2),
        ...throughputDetails,
        rssAfterStartMb: kbToMb(startupPeak.rssKb),
        peakRssThroughStartAndSmallLoadMb: kbToMb(peakAfterThroughput.hwmKb),
        large,
      },
    };
  } finally {
    progress(`${adapter}: stopping the relay (pid ${relay.pid})`);
    await stopRelayChild(relay, progress);
    track(undefined);
  }
}

function table(results: readonly AdapterResult[]): string {
  return markdownTable(
    [
      ['adapter', 'accepted msg/s', 'p50 ms', 'p99 ms', 'relay CPU ms/msg', 'peak RSS MB with 4×30 MB'],
      ...results.map((r) =>
        r.status === 'ok' || r.acceptedPerSecond !== undefined
          ? [r.adapter, r.acceptedPerSecond, r.p50Ms, r.p99Ms, r.relayCpuMsPerMessage, r.peakRssMb].map((v) =>
              String(v ?? '-'),
            )
          : [r.adapter, 'failed', '-', '-', '-', '-'],
      ),
    ],
    (column) => column === 0,
  );
}

function targetsLine(results: readonly AdapterResult[]): string {
  const kafka = results.find((r) => r.adapter === 'kafka');
  const checks = [
    `Kafka >= ${TARGETS.kafkaMessagesPerSecond} msg/s: ${kafka?.acceptedPerSecond ?? '-'}`,
    ...results.map((r) => `${r.adapter} p99 < ${TARGETS.p99Ms} ms: ${r.p99Ms ?? '-'}`),
    ...results.map((r) => `${r.adapter} peak RSS < ${TARGETS.peakRssMb} MB: ${r.peakRssMb ?? '-'}`),
  ];
  return `targets (issue 3): ${checks.join('; ')}`;
}

async function main(): Promise<number> {
  const scratch = await mkdtemp(join(tmpdir(), 'relay-bench-ingress-'));
  const profileDir = process.env.BENCH_CPU_PROF ? join(scratch, 'profiles') : undefined;
  const dataRoot = await useDataRoot(scratch);
  let current: RelayChild | undefined;
  const watchdog = startWatchdog(progress, () => (current ? [current] : []));

  const results: AdapterResult[] = [];
  progress('preparing the template database and the Kafka broker');
  const { dropTemplate, kafka } = await prepareTemplateAndKafka(true);
  const topic = `relay.bench.ingress.${process.pid}.${Date.now()}`;
  try {
    const adapters: [Adapter, Record<string, string>][] = [
      ['postgres', {}],
      ['kafka', { KAFKA_BROKERS: TEST_KAFKA_BROKERS.join(','), KAFKA_TOPIC: topic }],
    ];
    for (const [adapter, adapterConfig] of adapters) {
      if (adapter === 'kafka' && kafka.status === 'rejected') {
        results.push({
          bench: 'ingress',
          adapter,
          status: 'failed',
          error: `no Kafka broker: ${String(kafka.reason)}`,
        });
        continue;
      }
      // The ingress and the admin API (to create the account); no worker delivers what is accepted.
      const config = { RELAY_ROLES: 'smtp-ingress,admin-api', LOG_LEVEL: 'info', ...adapterConfig };
      try {
        results.push(await benchAdapter(adapter, config, scratch, profileDir, (child) => (current = child)));
      } catch (error) {
        results.push({ bench: 'ingress', adapter, status: 'failed', error: String(error) });
      }
      const last = results[results.length - 1];
      progress(`${adapter}: ${last?.status ?? '-'}${last?.error ? ` (${last.error})` : ''}`);
    }
  } finally {
    if (kafka.status === 'fulfilled') {
      await deleteKafkaTopic(topic).catch((error: unknown) =>
        progress(`could not delete topic ${topic}: ${String(error)}`),
      );
      await kafka.value();
    }
    await dropTemplate();
    await dataRoot.remove();
  }

  process.stdout.write(`\n${table(results)}\n\n`);
  for (const result of results) process.stdout.write(`${JSON.stringify(result)}\n`);
  process.stdout.write(`\n${targetsLine(results)}\n`);
  const failed = results.some((r) => r.status !== 'ok');
  if (profileDir) progress(`CPU profiles of the relay: ${profileDir}`);
  if (failed || process.env.BENCH_KEEP || profileDir) progress(`relay logs kept in ${scratch}`);
  else await rm(scratch, { recursive: true, force: true });
  clearTimeout(watchdog);
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    progress(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  },
);
