import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '@relay/config';
import { KafkaEventLog, PostgresEventLog, type EventLog } from '@relay/event-log';
import { TEST_KAFKA_BROKERS } from '@relay/testing';
import { kafkaEnv } from '../support/test-relay.js';
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
import { percentile } from './ingress-smtp-load.js';
import { hasSmtpSource, runBurst, runPaced, type BurstResult, type PacedResult } from './relay-load.js';
import { CountingSink } from './relay-sink.js';

/**
 * `npm run bench` (issue 4, point 9): the whole relay, end to end. For each event-log adapter,
 * Postgres then Kafka, it starts the relay in child processes of its own (relay-process.ts; two by
 * default, laid out as README's "Using both cores" says, BENCH_PROCESSES=1 for every role in one)
 * whose smart host is a counting sink in this process (relay-sink.ts), and measures:
 *
 *  (a) throughput: BENCH_N [10 000] messages of 5 KB over 20 sessions, one message per connection,
 *      sent by Postfix's smtp-source exactly as ../shared/bench/peers.sh sends them; delivered
 *      messages/s = N / (first connection -> the sink has counted N), capped at BENCH_TIMEOUT_S [120];
 *  (b) latency: BENCH_RATE [200] messages/s, each on a connection of its own, for BENCH_LATENCY_S
 *      [20] s (0 skips it): accept-to-delivered from the client's 250 to the message's arrival at
 *      the sink (what the JSON line reports), and the relay's own Delivered.latencyMs read back from
 *      the event log;
 *  (c) the relay process's peak RSS over both (VmHWM).
 *
 * Prints a table and then one JSON line per adapter, the Kafka adapter's last, to stdout; progress
 * to stderr. BENCH_ADAPTERS [postgres,kafka] picks adapters; BENCH_CPU_PROF=1 runs the relay
 * under `node --cpu-prof` and keeps the profiles; BENCH_KEEP=1 keeps the relay's logs.
 */

type Adapter = 'postgres' | 'kafka';

const SESSIONS = 20;
/** smtp-source's -l: payload octets; it adds about 140 octets of headers. */
const PAYLOAD_OCTETS = 5120;
const N = envNumber('BENCH_N', 10_000);
const BURST_TIMEOUT_MS = envNumber('BENCH_TIMEOUT_S', 120) * 1000;
const RATE = envNumber('BENCH_RATE', 200);
const LATENCY_MS = envNumber('BENCH_LATENCY_S', 20, true) * 1000;
/** Connections of the paced load open at once at most (SMTP_MAX_CONNECTIONS_PER_IP is 50). */
const PACED_MAX_IN_FLIGHT = 40;
/** After a load, how long the bench waits at most for the rest of the messages to reach the sink. */
const DRAIN_MS = 60_000;
/** The wait ends early when the sink has seen nothing new for this long after the load ended. */
const STALL_MS = 15_000;
/** Pause after the burst, so the relay's write-behind (outcomes, outbox) is done before (b). */
const SETTLE_MS = 2_000;
const RELAY_ENTRY = fileURLToPath(new URL('./relay-process.js', import.meta.url));
/**
 * BENCH_PROCESSES [2]: how the relay's roles are laid out over processes, as README's "Using both
 * cores" describes. The first process owns the database and data directory and runs the admin API
 * (the bench creates its account there); the others join it.
 */
const LAYOUTS: Readonly<Record<number, readonly (string | undefined)[]>> = {
  1: [undefined],
  2: ['worker,projector,admin-api,tracker', 'smtp-ingress'],
};
const LAYOUT = layoutOf(envNumber('BENCH_PROCESSES', 2));

function layoutOf(processes: number): readonly (string | undefined)[] {
  const layout = LAYOUTS[processes];
  if (!layout) throw new Error(`BENCH_PROCESSES must be one of ${Object.keys(LAYOUTS).join(', ')}`);
  return layout;
}
const AIM = { p99Ms: 250, shareOfPostfix: 0.5 };

interface RelayChild extends ChildRelay {
  readonly smtpPort: number;
  readonly databaseUrl: string;
  readonly dataDir: string;
}

/** The relay under test: its processes (the database's owner first), its SMTP port and database. */
interface Relay {
  readonly children: readonly RelayChild[];
  readonly smtpPort: number;
  readonly databaseUrl: string;
}

interface Distribution {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

interface ThroughputResult {
  readonly generator: BurstResult['generator'];
  readonly delivered: number;
  readonly seconds: number;
  readonly acceptSeconds: number;
  readonly deliveredPerSecond: number;
  readonly complete: boolean;
  readonly problem?: string;
  readonly relayCpuPercentOfOneCore: number;
  /** The Postgres backends serving the relay's database (the event log too, on Postgres). */
  readonly postgresCpuPercentOfOneCore: number;
  readonly sinkCpuPercentOfOneCore: number;
  readonly machineCpuBusyPercent: number;
  readonly duplicates: number;
}

interface LatencyResult {
  readonly attempted: number;
  readonly accepted: number;
  readonly arrived: number;
  readonly late: number;
  readonly seconds: number;
  readonly failures: Readonly<Record<string, number>>;
  /** Client's 250 -> arrival at the sink. */
  readonly endToEnd: Distribution | undefined;
  /** Delivered.latencyMs as the relay recorded it. */
  readonly relayReported: Distribution | undefined;
}

interface AdapterResult {
  readonly adapter: Adapter;
  /** partial: every figure is there, but some messages of (b) were refused or not delivered. */
  readonly status: 'ok' | 'partial' | 'failed';
  readonly error?: string;
  readonly throughput?: ThroughputResult;
  readonly latency?: LatencyResult;
  readonly peakRssMb?: number;
  readonly rssAfterStartMb?: number;
}

const progress = progressOf('bench');
const loadAverage = async (): Promise<string> =>
  (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');

function distribution(values: readonly number[]): Distribution | undefined {
  if (values.length === 0) return undefined;
  const sorted = Float64Array.from(values);
  return {
    count: values.length,
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(percentile(sorted, 100)),
  };
}

/** CPU seconds of each Postgres backend connected to `database` (its title names the database). */
async function backendCpuOf(database: string): Promise<Map<number, number>> {
  const cpu = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const title = await readFile(`/proc/${entry}/cmdline`, 'utf8');
      if (title.startsWith('postgres: ') && title.includes(` ${database} `)) {
        cpu.set(Number(entry), await cpuSecondsOf(Number(entry)));
      }
    } catch {
      // The process ended meanwhile.
    }
  }
  return cpu;
}

/**
 * CPU, in % of one core, of the relay, of its Postgres backends, of this process (the sink, and the
 * paced load) and of the whole machine, from now until the returned function is called.
 */
async function cpuMeter(
  pids: readonly number[],
  database: string,
): Promise<() => Promise<{ relay: number; postgres: number; own: number; machine: number }>> {
  const relayCpu = async (): Promise<number> =>
    (await Promise.all(pids.map((pid) => cpuSecondsOf(pid)))).reduce((a, b) => a + b, 0);
  const [relay0, backends0, machine0, own0, t0] = [
    await relayCpu(),
    await backendCpuOf(database),
    await machineCpu(),
    process.cpuUsage(),
    performance.now(),
  ];
  return async () => {
    const [relay1, backends1, machine1, own] = [
      await relayCpu(),
      await backendCpuOf(database),
      await machineCpu(),
      process.cpuUsage(own0),
    ];
    const seconds = (performance.now() - t0) / 1000;
    let postgres = 0;
    for (const [backend, cpu] of backends1) postgres += cpu - (backends0.get(backend) ?? 0);
    return {
      relay: round((100 * (relay1 - relay0)) / seconds),
      postgres: round((100 * postgres) / seconds),
      own: round((own.user + own.system) / 1e4 / seconds),
      machine: round((100 * (machine1.busy - machine0.busy)) / Math.max(1, machine1.total - machine0.total)),
    };
  };
}

async function startRelayChild(
  name: string,
  config: Record<string, string>,
  logPath: string,
  profileDir: string | undefined,
  join: { readonly databaseUrl: string; readonly dataDir: string } | undefined,
): Promise<RelayChild> {
  const logFd = openSync(logPath, 'a');
  const nodeArgs = profileDir
    ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`]
    : [];
  // stdin stays an open pipe: the relay stops by itself when this process goes away. Its logs go
  // to a file; its ready line comes on fd 3.
  const child = spawn(process.execPath, [...nodeArgs, RELAY_ENTRY, JSON.stringify(config)], {
    stdio: ['pipe', logFd, logFd, 'pipe'],
    env: {
      ...process.env,
      RELAY_TEST_LOGS: '1',
      BENCH_READY_FD: '3',
      ...(join ? { BENCH_JOIN: JSON.stringify(join) } : {}),
    },
  });
  closeSync(logFd);
  const readyPipe = child.stdio[3] as Readable | null | undefined;
  if (child.pid === undefined || !readyPipe) throw new Error('could not spawn the relay process');
  const relay = { process: child, pid: child.pid };
  const parse = (line: string) => readyFields(line, 'databaseUrl', 'dataDir');
  return { ...relay, ...(await readyLineOf(relay, readyPipe, parse, logPath, progress)) };
}

function layoutText(): string {
  return LAYOUT.length === 1
    ? 'one process, every role'
    : `${LAYOUT.length} processes: ${LAYOUT.map((roles) => roles ?? 'every role').join(' | ')}`;
}

/** The relay's processes of LAYOUT, one after the other; `track` sees each as it starts. */
async function startRelay(
  adapter: Adapter,
  config: Record<string, string>,
  scratch: string,
  profileDir: string | undefined,
  track: (children: readonly RelayChild[]) => void,
): Promise<Relay> {
  const children: RelayChild[] = [];
  try {
    for (const [index, roles] of LAYOUT.entries()) {
      const name = LAYOUT.length === 1 ? `relay-${adapter}` : `relay-${adapter}-${index + 1}`;
      const owner = children[0];
      children.push(
        await startRelayChild(
          name,
          { ...config, ...(roles ? { RELAY_ROLES: roles } : {}) },
          join(scratch, `${name}.log`),
          profileDir,
          owner ? { databaseUrl: owner.databaseUrl, dataDir: owner.dataDir } : undefined,
        ),
      );
      track([...children]);
    }
  } catch (error) {
    await stopRelay(children);
    track([]);
    throw error;
  }
  const ingress = children.find((child) => child.smtpPort > 0);
  if (!ingress) throw new Error('no relay process listens for SMTP');
  return { children, smtpPort: ingress.smtpPort, databaseUrl: children[0]!.databaseUrl };
}

/** Joined processes first: the owner drops the database and removes the data directory. */
async function stopRelay(children: readonly RelayChild[]): Promise<void> {
  for (const child of [...children].reverse()) await stopRelayChild(child, progress);
}

/** Kilobytes of memory summed over the relay's processes. */
async function relayMemory(relay: Relay): Promise<{ rssKb: number; hwmKb: number }> {
  const all = await Promise.all(relay.children.map((child) => memoryOf(child.pid)));
  return {
    rssKb: all.reduce((sum, m) => sum + m.rssKb, 0),
    hwmKb: all.reduce((sum, m) => sum + m.hwmKb, 0),
  };
}

/** (a): N messages from 20 sessions until the sink has counted them all. */
async function measureThroughput(relay: Relay, sink: CountingSink): Promise<ThroughputResult> {
  const base = sink.counted();
  const meter = await cpuMeter(
    relay.children.map((child) => child.pid),
    new URL(relay.databaseUrl).pathname.slice(1),
  );
  const startedAt = performance.now();
  let finished = false;
  const burst = runBurst({
    port: relay.smtpPort,
    count: N,
    sessions: SESSIONS,
    payloadOctets: PAYLOAD_OCTETS,
    timeoutMs: BURST_TIMEOUT_MS,
  }).finally(() => {
    finished = true;
  });
  const complete = await sink.waitForCount(base + N, startedAt + BURST_TIMEOUT_MS, STALL_MS, () => finished);
  const load = await burst;
  const endedAt = complete ? (sink.arrivalTimes[base + N - 1] ?? performance.now()) : performance.now();
  const cpu = await meter();
  const delivered = Math.min(N, sink.counted() - base);
  const seconds = (endedAt - startedAt) / 1000;
  return {
    generator: load.generator,
    delivered,
    seconds: round(seconds, 2),
    acceptSeconds: round((load.finishedAt - load.startedAt) / 1000, 2),
    deliveredPerSecond: round(delivered / seconds),
    complete,
    ...(load.problem ? { problem: load.problem } : {}),
    relayCpuPercentOfOneCore: cpu.relay,
    postgresCpuPercentOfOneCore: cpu.postgres,
    sinkCpuPercentOfOneCore: cpu.own,
    machineCpuBusyPercent: cpu.machine,
    duplicates: sink.duplicates,
  };
}

/** The Delivered events of `ids`, read back from the relay's event log; retried while some are missing. */
async function relayLatencies(log: EventLog, from: Date, ids: ReadonlySet<string>): Promise<number[]> {
  let latencies: number[] = [];
  for (let attempt = 0; attempt < 4; attempt++) {
    latencies = [];
    const range = { from, to: new Date(Date.now() + 60_000), types: ['Delivered' as const] };
    for await (const { event } of log.readRange(range)) {
      if (event.type === 'Delivered' && event.messageId && ids.has(event.messageId)) {
        latencies.push(event.data.latencyMs);
      }
    }
    if (latencies.length >= ids.size) break;
    // The outcome and its event are written after the remote 250, the event reaches the log after.
    await sleep(2_000);
  }
  return latencies;
}

/** (b): a steady rate; accept-to-delivered from outside and as the relay saw it. */
async function measureLatency(
  relay: Relay,
  sink: CountingSink,
  openLog: () => Promise<EventLog>,
): Promise<LatencyResult> {
  const from = new Date(Date.now() - 1_000);
  const paced: PacedResult = await runPaced({
    port: relay.smtpPort,
    rate: RATE,
    durationMs: LATENCY_MS,
    messageOctets: PAYLOAD_OCTETS,
    maxInFlight: PACED_MAX_IN_FLIGHT,
  });
  const ids = new Set(paced.acceptedAt.keys());
  const arrivedCount = (): number => [...ids].filter((id) => sink.arrivals.has(id)).length;
  const deadline = performance.now() + DRAIN_MS;
  let arrived = arrivedCount();
  let lastProgress = performance.now();
  while (arrived < ids.size && performance.now() < deadline && performance.now() - lastProgress < STALL_MS) {
    await sleep(100);
    const now = arrivedCount();
    if (now !== arrived) lastProgress = performance.now();
    arrived = now;
  }
  const endToEnd: number[] = [];
  for (const [id, acceptedAt] of paced.acceptedAt) {
    const arrivedAt = sink.arrivals.get(id);
    if (arrivedAt !== undefined) endToEnd.push(arrivedAt - acceptedAt);
  }
  let relayReported: number[] = [];
  const log = await openLog();
  try {
    relayReported = await relayLatencies(log, from, ids);
  } catch (error) {
    progress(`could not read Delivered events back: ${String(error)}`);
  } finally {
    await log.close();
  }
  return {
    attempted: paced.attempted,
    accepted: ids.size,
    arrived: endToEnd.length,
    late: paced.late,
    seconds: round(paced.elapsedMs / 1000, 2),
    failures: paced.failures,
    endToEnd: distribution(endToEnd),
    relayReported: distribution(relayReported),
  };
}

async function benchAdapter(
  adapter: Adapter,
  config: Record<string, string>,
  scratch: string,
  profileDir: string | undefined,
  track: (children: readonly RelayChild[]) => void,
): Promise<AdapterResult> {
  const sink = new CountingSink();
  const sinkPort = await sink.start();
  progress(`${adapter}: starting the relay (${layoutText()}), smart host: sink on 127.0.0.1:${sinkPort}`);
  let relay: Relay | undefined;
  try {
    relay = await startRelay(
      adapter,
      { ...config, DELIVERY_SMART_HOST: `127.0.0.1:${sinkPort}` },
      scratch,
      profileDir,
      track,
    );
    const rssAfterStartMb = kbToMb((await relayMemory(relay)).rssKb);
    progress(`${adapter}: (a) ${N} messages x ${PAYLOAD_OCTETS} octets over ${SESSIONS} sessions`);
    const throughput = await measureThroughput(relay, sink);
    progress(
      `${adapter}: (a) ${throughput.delivered} delivered in ${throughput.seconds} s -> ` +
        `${throughput.deliveredPerSecond} msg/s (${throughput.generator} done after ${throughput.acceptSeconds} s); ` +
        `CPU % of one core: relay ${throughput.relayCpuPercentOfOneCore}, its Postgres backends ` +
        `${throughput.postgresCpuPercentOfOneCore}, sink ${throughput.sinkCpuPercentOfOneCore}; ` +
        `machine ${throughput.machineCpuBusyPercent}% busy`,
    );
    let latency: LatencyResult | undefined;
    if (LATENCY_MS > 0) {
      if (!throughput.complete) {
        // (b) measures a steady rate, not the backlog of (a).
        progress(`${adapter}: waiting up to ${DRAIN_MS / 1000} s for the rest of (a)`);
        await sink.waitForCount(N, performance.now() + DRAIN_MS, STALL_MS, () => true);
      }
      await sleep(SETTLE_MS);
      progress(`${adapter}: (b) ${RATE} messages/s for ${LATENCY_MS / 1000} s`);
      const databaseUrl = relay.databaseUrl;
      const openLog = (): Promise<EventLog> =>
        adapter === 'kafka'
          ? KafkaEventLog.connect({
              brokers: TEST_KAFKA_BROKERS,
              topic: config.KAFKA_TOPIC,
              groupIdPrefix: config.KAFKA_GROUP_PREFIX,
              logger: silentLogger,
            })
          : PostgresEventLog.connect({ url: databaseUrl, logger: silentLogger });
      latency = await measureLatency(relay, sink, openLog);
      progress(
        `${adapter}: (b) ${latency.arrived} of ${latency.attempted} delivered; ` +
          `client 250 -> sink ${JSON.stringify(latency.endToEnd)}, relay's latencyMs ${JSON.stringify(latency.relayReported)}`,
      );
    }
    const peakRssMb = kbToMb((await relayMemory(relay)).hwmKb);
    const failures = [
      throughput.complete ? undefined : `the sink counted ${throughput.delivered} of ${N}`,
      throughput.problem,
      latency && latency.arrived === 0 ? '(b): nothing delivered' : undefined,
    ].filter((p): p is string => p !== undefined);
    const shortfall =
      latency && latency.arrived < latency.attempted
        ? `(b): ${latency.arrived} of ${latency.attempted} delivered ${JSON.stringify(latency.failures)}`
        : undefined;
    const problems = [...failures, ...(shortfall ? [shortfall] : [])];
    return {
      adapter,
      status: failures.length > 0 ? 'failed' : shortfall ? 'partial' : 'ok',
      ...(problems.length > 0 ? { error: problems.join('; ') } : {}),
      throughput,
      ...(latency ? { latency } : {}),
      peakRssMb,
      rssAfterStartMb,
    };
  } finally {
    if (relay) {
      progress(`${adapter}: stopping the relay (pid ${relay.children.map((c) => c.pid).join(', ')})`);
      await stopRelay(relay.children);
      track([]);
    }
    await sink.stop();
  }
}

function table(results: readonly AdapterResult[]): string {
  const dist = (d: Distribution | undefined): string => (d ? `${d.p50} / ${d.p99} / ${d.max}` : '-');
  return markdownTable(
    [
      [
        'adapter',
        'delivered msg/s',
        'seconds',
        'accept-to-delivered p50 / p99 / max ms',
        "relay's latencyMs p50 / p99 / max",
        '(b) delivered / sent',
        'peak RSS MB',
        'relay CPU %',
        'its PG CPU %',
        'machine CPU %',
        'status',
      ],
      ...results.map((r) => [
        r.adapter,
        String(r.throughput?.deliveredPerSecond ?? '-'),
        String(r.throughput?.seconds ?? '-'),
        dist(r.latency?.endToEnd),
        dist(r.latency?.relayReported),
        r.latency ? `${r.latency.arrived} / ${r.latency.attempted}` : '-',
        String(r.peakRssMb ?? '-'),
        String(r.throughput?.relayCpuPercentOfOneCore ?? '-'),
        String(r.throughput?.postgresCpuPercentOfOneCore ?? '-'),
        String(r.throughput?.machineCpuBusyPercent ?? '-'),
        r.status,
      ]),
    ],
    // The adapter and the status are words.
    (column, columns) => column === 0 || column === columns - 1,
  );
}

/** The line scripts read: exactly these keys, null where a figure is missing. */
function jsonLine(r: AdapterResult): string {
  return JSON.stringify({
    adapter: r.adapter,
    delivered_per_s: r.throughput?.deliveredPerSecond ?? null,
    p50_ms: r.latency?.endToEnd?.p50 ?? null,
    p99_ms: r.latency?.endToEnd?.p99 ?? null,
    max_ms: r.latency?.endToEnd?.max ?? null,
    peak_rss_mb: r.peakRssMb ?? null,
  });
}

async function main(): Promise<number> {
  const scratch = await mkdtemp(join(tmpdir(), 'relay-bench-'));
  const profileDir = process.env.BENCH_CPU_PROF ? join(scratch, 'profiles') : undefined;
  const dataRoot = await useDataRoot(scratch);
  const adapters = (process.env.BENCH_ADAPTERS ?? 'postgres,kafka')
    .split(',')
    .map((a) => a.trim())
    .filter((a): a is Adapter => a === 'postgres' || a === 'kafka');
  let current: readonly RelayChild[] = [];
  const watchdog = startWatchdog(progress, () => current);

  const loadBefore = await loadAverage();
  progress(
    `generator: ${(await hasSmtpSource()) ? 'smtp-source' : 'node (no /usr/sbin/smtp-source)'}; ` +
      `preparing the template database${adapters.includes('kafka') ? ' and the Kafka broker' : ''}`,
  );
  const { dropTemplate, kafka } = await prepareTemplateAndKafka(adapters.includes('kafka'));
  // A topic and consumer groups of the bench's own (the relay's default partition count).
  const { KAFKA_PARTITIONS: _partitions, ...kafkaConfig } = kafkaEnv(TEST_KAFKA_BROKERS);
  const results: AdapterResult[] = [];
  try {
    for (const adapter of adapters) {
      if (adapter === 'kafka' && kafka.status === 'rejected') {
        results.push({ adapter, status: 'failed', error: `no Kafka broker: ${String(kafka.reason)}` });
        continue;
      }
      const config = adapter === 'kafka' ? kafkaConfig : {};
      try {
        results.push(
          await benchAdapter(adapter, config, scratch, profileDir, (children) => (current = children)),
        );
      } catch (error) {
        results.push({ adapter, status: 'failed', error: String(error) });
      }
      const last = results[results.length - 1];
      progress(`${adapter}: ${last?.status ?? '-'}${last?.error ? ` (${last.error})` : ''}`);
    }
  } finally {
    if (kafka.status === 'fulfilled') {
      const { KAFKA_TOPIC: topic = '', KAFKA_GROUP_PREFIX: prefix = '' } = kafkaConfig;
      await deleteKafkaTopic(topic, prefix).catch((error: unknown) =>
        progress(`could not delete topic ${topic} and groups ${prefix}*: ${String(error)}`),
      );
      await kafka.value();
    }
    await dropTemplate();
    await dataRoot.remove();
  }
  const loadAfter = await loadAverage();

  await writeFile(join(scratch, 'results.json'), JSON.stringify(results, null, 2));
  process.stdout.write(
    `\nrelay end to end: N=${N} x ${PAYLOAD_OCTETS} B payload, ${SESSIONS} sessions, one message per connection; ` +
      `latency at ${RATE} msg/s for ${LATENCY_MS / 1000} s; relay: ${layoutText()}; ` +
      `loadavg before/after: ${loadBefore} / ${loadAfter}\n\n`,
  );
  process.stdout.write(`${table(results)}\n`);
  process.stdout.write(
    '(delivered msg/s: N / (first connection -> sink counted N); accept-to-delivered: client 250 -> ' +
      "arrival at the sink; relay's latencyMs: Delivered events; peak RSS: VmHWM of the relay's processes, summed; " +
      `CPU: during (a), % of one core, the relay's processes summed (its PG: the Postgres backends of the relay's database); aim: p99 < ${AIM.p99Ms} ms, msg/s >= ${AIM.shareOfPostfix} x Postfix's in peers.sh)\n\n`,
  );
  for (const result of results) process.stdout.write(`${jsonLine(result)}\n`);
  const failed = results.some((r) => r.status === 'failed');
  if (profileDir) progress(`CPU profiles of the relay: ${profileDir}`);
  if (results.some((r) => r.status !== 'ok') || process.env.BENCH_KEEP || profileDir)
    progress(`relay logs and results.json kept in ${scratch}`);
  else await rm(scratch, { recursive: true, force: true });
  clearTimeout(watchdog);
  return failed ? 1 : 0;
}

// An explicit exit: async-exit-hook (imported through @relay/persistence) exits with 0 on
// 'beforeExit', whatever process.exitCode says. Everything started is stopped by then.
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    progress(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
