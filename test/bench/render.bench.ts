import { fork } from 'node:child_process';
import { createPrivateKey, sign } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { generateDkimKeys, renderMessage, type DkimKey, type RenderOptions } from '@relay/mime';
import { messageWithAttachments, smallMessage } from './render-messages.js';

/**
 * `npm run bench:render`: messages rendered and signed per second, in one process on one core
 * (a child run with V8's --single-threaded), for a 5 KB and a 1 MB message with open and click
 * tracking, the unsubscribe link, List-Unsubscribe and wrapping on; then the peak RSS of a fresh
 * process rendering one 30 MB message from a file. Each copy is for another recipient, so every
 * token and signature is computed. Progress goes to stderr; the table and one JSON line per case
 * to stdout. BENCH_RENDER_SCALE (0 < s <= 1) shortens the runs.
 */

const SCALE = benchScale();
const PHASE_SECONDS = 5 * SCALE;
/** Copies in flight: mailsplit yields to the event loop per line; a few in flight keep the core busy. */
const IN_FLIGHT = 8;
const LARGE_BYTES = 30 * 1024 * 1024;
const RSS_CHILD_FLAG = '--rss-child';
const THROUGHPUT_CHILD_FLAG = '--throughput-child';

function progress(line: string): void {
  process.stderr.write(`[bench:render ${new Date().toISOString().slice(11, 23)}] ${line}\n`);
}

function benchScale(): number {
  const raw = process.env.BENCH_RENDER_SCALE;
  if (raw === undefined || raw === '') return 1;
  const scale = Number(raw);
  if (!(scale > 0 && scale <= 1)) throw new Error(`BENCH_RENDER_SCALE must be in (0, 1], got "${raw}"`);
  return scale;
}

type Signing = 'none' | 'rsa' | 'ed25519' | 'rsa+ed25519';

function renderOptions(keys: readonly DkimKey[], signing: Signing, index: number): RenderOptions {
  const pick = (type: DkimKey['type']): string[] =>
    keys.filter((key) => key.type === type).map((key) => key.privateKeyPem);
  const privateKeys =
    signing === 'rsa'
      ? pick('rsa')
      : signing === 'ed25519'
        ? pick('ed25519')
        : [...pick('rsa'), ...pick('ed25519')];
  return {
    accountId: 'acc_bench',
    messageId: `msg_${index}`,
    recipient: `user${index}@recipient.example`,
    wrapWidth: 76,
    tracking: { opens: true, clicks: true },
    listUnsubscribe: true,
    trackingBaseUrl: 'https://t.shop.example',
    trackingKey: 'bench-tracking-key-0123456789abcdef',
    ...(signing === 'none' ? {} : { dkim: { domain: 'shop.example', selector: 'relay1', privateKeys } }),
  };
}

async function renderOnce(message: Buffer, options: RenderOptions): Promise<number> {
  let bytes = 0;
  for await (const chunk of renderMessage(Readable.from([message]), options))
    bytes += (chunk as Buffer).length;
  return bytes;
}

interface Throughput {
  readonly case: string;
  readonly messageBytes: number;
  readonly signing: Signing;
  readonly messages: number;
  readonly seconds: number;
  readonly messagesPerSecond: number;
  readonly megabytesPerSecond: number;
  /** Mean time one copy took from start to last byte, with IN_FLIGHT copies sharing the core. */
  readonly meanLatencyMs: number;
  /** Process CPU time over wall time: 100 means the one core was busy throughout. */
  readonly cpuPercent: number;
  /**
   * Messages per second of this process's CPU time: what one core does when it is not shared.
   * On a busy machine (other processes competing for the cores) wall-clock rates understate it.
   */
  readonly messagesPerCpuSecond: number;
  readonly renderedBytes: number;
}

async function throughput(
  name: string,
  message: Buffer,
  keys: readonly DkimKey[],
  signing: Signing,
): Promise<Throughput> {
  for (let i = 0; i < 20; i++) await renderOnce(message, renderOptions(keys, signing, i));
  const deadline = performance.now() + PHASE_SECONDS * 1000;
  const cpu = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  let done = 0;
  let renderedBytes = 0;
  let latency = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const index = next++;
      const t0 = performance.now();
      renderedBytes = await renderOnce(message, renderOptions(keys, signing, index));
      latency += performance.now() - t0;
      done++;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, () => worker()));
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const result: Throughput = {
    case: name,
    messageBytes: message.length,
    signing,
    messages: done,
    seconds: round(seconds, 2),
    messagesPerSecond: round(done / seconds, 1),
    megabytesPerSecond: round((done * message.length) / seconds / 1024 / 1024, 1),
    meanLatencyMs: round(latency / done, 2),
    cpuPercent: round(((used.user + used.system) / 1000 / (seconds * 1000)) * 100, 0),
    messagesPerCpuSecond: round(done / ((used.user + used.system) / 1e6), 1),
    renderedBytes,
  };
  progress(
    `${name} ${signing}: ${result.messagesPerSecond} messages/s, ${result.messagesPerCpuSecond} per CPU-second`,
  );
  return result;
}

interface PeakRss {
  readonly case: string;
  readonly messageBytes: number;
  readonly signing: Signing;
  /**
   * 'lazy': V8 as configured by default, collecting garbage when it sees fit, so the peak includes
   * chunks already passed on; 'collected': a full GC every 50 ms (--expose-gc), so the peak is
   * about what is really held.
   */
  readonly gc: 'lazy' | 'collected';
  readonly seconds: number;
  readonly renderedBytes: number;
  /** RSS of the fresh process after loading everything and generating keys, before rendering. */
  readonly baselineRssMb: number;
  /** ru_maxrss of the process at the end. */
  readonly peakRssMb: number;
  /** Highest Buffer memory (process.memoryUsage().arrayBuffers) sampled every 50 ms. */
  readonly peakBufferMb: number;
  readonly spooledToFile: boolean;
}

type ChildReport = Omit<PeakRss, 'case' | 'messageBytes' | 'signing' | 'gc'>;

const mb = (bytes: number): number => round(bytes / 1024 / 1024, 1);

/** Child process: render the message in `file` to nowhere, then report memory figures. */
async function rssChild(file: string): Promise<void> {
  const keys = await generateDkimKeys({ domain: 'shop.example', selector: 'relay1', ed25519: true });
  const collect = global.gc;
  collect?.();
  const baseline = process.memoryUsage().rss;
  let peakBuffers = 0;
  const sampler = setInterval(() => {
    collect?.();
    peakBuffers = Math.max(peakBuffers, process.memoryUsage().arrayBuffers);
  }, 50);
  const started = performance.now();
  let renderedBytes = 0;
  let spooledToFile = false;
  await pipeline(
    renderMessage(createReadStream(file), {
      ...renderOptions(keys, 'rsa+ed25519', 1),
      onRendered: (summary) => (spooledToFile = summary.spooledToFile),
    }),
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        renderedBytes += chunk.length;
        callback();
      },
    }),
  );
  clearInterval(sampler);
  const report: ChildReport = {
    seconds: round((performance.now() - started) / 1000, 2),
    renderedBytes,
    baselineRssMb: mb(baseline),
    peakRssMb: round(process.resourceUsage().maxRSS / 1024, 1),
    peakBufferMb: mb(peakBuffers),
    spooledToFile,
  };
  process.send?.(report);
}

async function peakRss(): Promise<PeakRss[]> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-render-'));
  try {
    const file = join(dir, 'large.eml');
    const message = messageWithAttachments(LARGE_BYTES, 3);
    await writeFile(file, message);
    const results: PeakRss[] = [];
    for (const gc of ['lazy', 'collected'] as const) {
      progress(`30 MB: rendering ${message.length} bytes in a fresh process (GC ${gc})`);
      const report = await runChild<ChildReport>(
        [RSS_CHILD_FLAG, file],
        gc === 'collected' ? ['--expose-gc'] : [],
      );
      results.push({ case: '30 MB', messageBytes: message.length, signing: 'rsa+ed25519', gc, ...report });
    }
    return results;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface SignatureCost {
  readonly case: 'signature only';
  readonly rsa2048PerCpuSecond: number;
  readonly ed25519PerCpuSecond: number;
}

/** The floor under a signed message: one bare signature with an already parsed key, per CPU-second. */
function signatureCost(keys: readonly DkimKey[]): SignatureCost {
  const rate = (type: DkimKey['type'], count: number): number => {
    const pem = keys.find((key) => key.type === type)?.privateKeyPem ?? '';
    const key = createPrivateKey(pem);
    const data = Buffer.alloc(32, 1);
    const cpu = process.cpuUsage();
    for (let i = 0; i < count; i++) sign(type === 'rsa' ? 'sha256' : null, data, key);
    const used = process.cpuUsage(cpu);
    return round(count / ((used.user + used.system) / 1e6), 0);
  };
  return {
    case: 'signature only',
    rsa2048PerCpuSecond: rate('rsa', Math.max(50, Math.round(1000 * SCALE))),
    ed25519PerCpuSecond: rate('ed25519', Math.max(50, Math.round(5000 * SCALE))),
  };
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

function printTable(
  rates: readonly Throughput[],
  memory: readonly PeakRss[],
  signatures: SignatureCost,
): void {
  const header = [
    'case',
    'DKIM',
    'messages',
    'seconds',
    'messages/s',
    'MB/s',
    'mean latency ms',
    'CPU %',
    'messages/CPU-s',
  ];
  const rows = rates.map((r) => [
    `${r.case} (${r.messageBytes} B)`,
    r.signing,
    String(r.messages),
    r.seconds.toFixed(2),
    r.messagesPerSecond.toFixed(1),
    r.megabytesPerSecond.toFixed(1),
    r.meanLatencyMs.toFixed(2),
    String(r.cpuPercent),
    r.messagesPerCpuSecond.toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number))).join(' | ')} |`;
  const out = [
    `Render benchmark: one process, ${IN_FLIGHT} copies in flight, tracking (opens, clicks), unsubscribe link, ` +
      `List-Unsubscribe, wrap 76; every copy for another recipient; ${PHASE_SECONDS} s per case.`,
    '',
    line(header),
    `|${widths.map((w, i) => (i < 2 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...rows.map(line),
    '',
    `Signing alone (parsed key, no message): RSA-2048 ${signatures.rsa2048PerCpuSecond}/CPU-s, ` +
      `Ed25519 ${signatures.ed25519PerCpuSecond}/CPU-s.`,
    ...memory.map(
      (m) =>
        `Rendering one ${(m.messageBytes / 1024 / 1024).toFixed(1)} MB message (${m.signing}, ` +
        `${m.spooledToFile ? 'spooled to a file' : 'held in memory'}) in a fresh process, GC ${m.gc}: ` +
        `peak RSS ${m.peakRssMb} MB (${m.baselineRssMb} MB before rendering), peak Buffer memory ${m.peakBufferMb} MB, ${m.seconds} s.`,
    ),
    '',
    ...rates.map((r) => JSON.stringify(r)),
    ...memory.map((m) => JSON.stringify(m)),
    JSON.stringify(signatures),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

interface ThroughputReport {
  readonly rates: Throughput[];
  readonly signatures: SignatureCost;
}

/** Child process: every throughput case, with V8 kept to the main thread (one core). */
async function throughputChild(): Promise<void> {
  progress('generating DKIM keys');
  const keys = await generateDkimKeys({ domain: 'shop.example', selector: 'relay1', ed25519: true });
  const small = smallMessage(5 * 1024);
  const medium = messageWithAttachments(1024 * 1024, 1);
  const rates: Throughput[] = [];
  for (const signing of ['none', 'rsa', 'ed25519', 'rsa+ed25519'] as const) {
    rates.push(await throughput('5 KB', small, keys, signing));
  }
  for (const signing of ['none', 'rsa+ed25519'] as const) {
    rates.push(await throughput('1 MB', medium, keys, signing));
  }
  const report: ThroughputReport = { rates, signatures: signatureCost(keys) };
  process.send?.(report);
}

function runChild<T>(args: readonly string[], execArgv: readonly string[]): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), [...args], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [...execArgv],
    });
    child.once('message', (value) => resolve(value as T));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? undefined : reject(new Error(`bench child exited with ${code}`)),
    );
  });
}

async function main(): Promise<void> {
  if (process.argv.includes(THROUGHPUT_CHILD_FLAG)) {
    await throughputChild();
    return;
  }
  const childIndex = process.argv.indexOf(RSS_CHILD_FLAG);
  if (childIndex !== -1) {
    await rssChild(process.argv[childIndex + 1] as string);
    return;
  }
  // --single-threaded keeps V8's compiler and garbage collector on the main thread, so the
  // process uses one core and "messages/CPU-s" is what one core does.
  const { rates, signatures } = await runChild<ThroughputReport>(
    [THROUGHPUT_CHILD_FLAG],
    ['--single-threaded'],
  );
  printTable(rates, await peakRss(), signatures);
}

await main();
