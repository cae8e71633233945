import type { ChildProcess } from 'node:child_process';
import { fstatSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { Kafka, logLevel } from 'kafkajs';
import { ensureKafkaBroker, prepareTemplateDatabase, TEST_KAFKA_BROKERS } from '@relay/testing';
import { signalThenKill } from '../support/relay-child-process.js';

/**
 * What the end-to-end benches (ingress.bench.ts, relay.bench.ts) and the relay processes they
 * start (ingress-relay-process.ts, relay-process.ts) have in common.
 */

/**
 * The environment variable that tells a relay process where to make its data directory, which it
 * then leaves for the bench to remove. Every relay run of a bench keeps its spool until the bench
 * ends: on the journal-less ext4 of the bench machines, creating a file skips every inode freed in
 * the last minutes (ext4's recently_deleted), and removing one adapter's ~20 000 spooled bodies
 * made each file of the next adapter's run cost up to ten times the kernel CPU of the first's.
 */
export const BENCH_DATA_ROOT = 'BENCH_DATA_ROOT';

/** Makes the bench's data root under `scratch` and points the relay processes it starts there. */
export async function useDataRoot(scratch: string): Promise<{ remove(): Promise<void> }> {
  const root = join(scratch, 'data');
  await mkdir(root, { recursive: true });
  process.env[BENCH_DATA_ROOT] = root;
  return { remove: () => rm(root, { recursive: true, force: true }) };
}

/** USER_HZ: the unit of utime and stime in /proc/<pid>/stat on every mainstream Linux ABI. */
const CLOCK_TICKS_PER_SECOND = 100;
const READY_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 60_000;
/** Everything, both adapters included, or the bench kills its relay and gives up. */
const WATCHDOG_MS = 20 * 60_000;
const DEFAULT_RELAY_LIFETIME_MS = 15 * 60_000;

/** The relay process's own bound on its stop: smtp-server's closeTimeout is 30 s; past that a stop is stuck. */
export const RELAY_STOP_TIMEOUT_MS = 45_000;

/** The account a relay process creates: it may relay from 127.0.0.1 without AUTH. */
export const BENCH_ACCOUNT = {
  name: 'Bench',
  username: 'bench',
  password: 'bench password, never used',
  allowedFrom: ['*'],
  allowedIps: ['127.0.0.1/32'],
};

export function envNumber(name: string, fallback: number, zeroAllowed = false): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !zeroAllowed)) {
    throw new Error(`${name} must be a ${zeroAllowed ? 'non-negative' : 'positive'} number`);
  }
  return value;
}

/** A progress line writer for stderr, each line tagged with the bench and the time. */
export const progressOf =
  (bench: string) =>
  (line: string): void => {
    process.stderr.write(`[${bench} ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  };

export type Progress = ReturnType<typeof progressOf>;

export const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;
export const kbToMb = (kb: number): number => round(kb / 1024);

/** VmRSS and VmHWM (peak since start, or since the last reset) of a process, in kB. */
export async function memoryOf(pid: number): Promise<{ rssKb: number; hwmKb: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
}

/** User plus system CPU seconds a process (all its threads) has used. */
export async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may hold spaces, start at field 3 (state).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** Busy and total jiffies of the whole machine, from /proc/stat. */
export async function machineCpu(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number);
  const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  return { busy, total: busy + (idle ?? 0) + (iowait ?? 0) };
}

/** A relay process a bench started. */
export interface ChildRelay {
  readonly process: ChildProcess;
  readonly pid: number;
}

/**
 * The relay process's ready line from `input`: the first line `parse` accepts. The process is
 * killed when none comes within READY_TIMEOUT_MS; without one, it is stopped and this throws.
 */
export async function readyLineOf<T>(
  relay: ChildRelay,
  input: Readable,
  parse: (line: string) => T | undefined,
  logPath: string,
  progress: Progress,
): Promise<T> {
  const lines = createInterface({ input });
  const timer = setTimeout(() => relay.process.kill('SIGKILL'), READY_TIMEOUT_MS);
  let ready: T | undefined;
  try {
    for await (const line of lines) {
      ready = parse(line);
      if (ready) break;
    }
  } finally {
    clearTimeout(timer);
    lines.close();
    // Whatever else it prints is not read, but must not fill the pipe.
    input.resume();
  }
  if (ready) return ready;
  await stopRelayChild(relay, progress);
  throw new Error(
    `the relay process exited before it was ready (exit ${relay.process.exitCode}; see ${logPath})`,
  );
}

/** The ready line's smtpPort and `keys`: a number and strings, or undefined for any other line. */
export function readyFields<K extends string>(
  line: string,
  ...keys: K[]
): ({ smtpPort: number } & Record<K, string>) | undefined {
  try {
    const ready = JSON.parse(line) as Record<string, unknown> | null;
    const smtpPort = ready?.smtpPort;
    if (typeof smtpPort !== 'number' || !keys.every((key) => typeof ready?.[key] === 'string'))
      return undefined;
    const fields = Object.fromEntries(keys.map((key) => [key, ready?.[key]]));
    return { smtpPort, ...fields } as { smtpPort: number } & Record<K, string>;
  } catch {
    return undefined;
  }
}

/** TERM, a bounded wait for a clean stop (it drops its database), then KILL; by PID only. */
export async function stopRelayChild(relay: ChildRelay, progress: Progress): Promise<void> {
  const { forced } = await signalThenKill(relay.process, 'SIGTERM', STOP_TIMEOUT_MS);
  if (forced)
    progress(`relay pid ${relay.pid} ignored SIGTERM for ${STOP_TIMEOUT_MS / 1000} s; it was killed`);
}

/** Kills the current relay processes and exits with 2 once the bench has run for WATCHDOG_MS. */
export function startWatchdog(progress: Progress, current: () => readonly ChildRelay[]): NodeJS.Timeout {
  const watchdog = setTimeout(() => {
    progress(`gave up after ${WATCHDOG_MS / 60_000} min`);
    for (const relay of current()) relay.process.kill('SIGKILL');
    process.exit(2);
  }, WATCHDOG_MS);
  watchdog.unref();
  return watchdog;
}

/**
 * The migrated template database and, when asked for, the Kafka broker, prepared side by side. A
 * Kafka that fails is an outcome (its adapter's run fails); a template that fails is thrown.
 */
export async function prepareTemplateAndKafka(withKafka: boolean): Promise<{
  readonly dropTemplate: () => Promise<void>;
  readonly kafka: PromiseSettledResult<() => Promise<void>>;
}> {
  const [template, kafka] = await Promise.allSettled([
    prepareTemplateDatabase(),
    withKafka ? ensureKafkaBroker() : Promise.reject(new Error('not asked for')),
  ]);
  if (template.status === 'rejected') {
    if (kafka.status === 'fulfilled') await kafka.value();
    throw template.reason;
  }
  return { dropTemplate: template.value, kafka };
}

/** Deletes a bench's topic and, given their prefix, its consumer groups. */
export async function deleteKafkaTopic(topic: string, groupPrefix?: string): Promise<void> {
  const admin = new Kafka({
    brokers: TEST_KAFKA_BROKERS,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3_000,
  }).admin();
  await admin.connect();
  try {
    if (groupPrefix !== undefined) {
      const { groups } = await admin.listGroups();
      const ours = groups.map((g) => g.groupId).filter((id) => id.startsWith(groupPrefix));
      if (ours.length > 0) await admin.deleteGroups(ours);
    }
    await admin.deleteTopics({ topics: [topic], timeout: 10_000 });
  } finally {
    await admin.disconnect();
  }
}

/**
 * A Markdown table of `rows`, the first the header, in columns as wide as their widest cell:
 * right-aligned (figures), but for the columns `leftAligned` picks.
 */
export function markdownTable(
  rows: readonly (readonly string[])[],
  leftAligned: (column: number, columns: number) => boolean,
): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  const left = (i: number): boolean => leftAligned(i, widths.length);
  const line = (row: readonly string[]): string =>
    `| ${row.map((cell, i) => (left(i) ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (left(i) ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  const [header, ...body] = rows;
  return [line(header ?? []), rule, ...body.map(line)].join('\n');
}

/**
 * In a relay process: calls `shutdown` on SIGTERM or SIGINT, when stdin is a pipe that closes (the
 * parent is gone), and after BENCH_RELAY_LIFETIME_MS [15 min].
 */
export function shutdownWhenAsked(shutdown: (reason: string) => void): void {
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // Only a pipe from a parent: a terminal or /dev/null on stdin says nothing about a parent.
  if (fstatSync(0).isFIFO()) {
    process.stdin.on('close', () => shutdown('stdin closed'));
    process.stdin.resume();
  }
  const lifetime = Number(process.env.BENCH_RELAY_LIFETIME_MS ?? DEFAULT_RELAY_LIFETIME_MS);
  setTimeout(() => shutdown('lifetime'), lifetime).unref();
}

/** In a relay process: what its main() failing to start ends with. */
export function exitFailedToStart(error: unknown): never {
  process.stderr.write(
    `bench relay failed to start: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exit(1);
}
