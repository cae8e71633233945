import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { access, constants } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { runLoad, smallMessage } from './ingress-smtp-load.js';

/**
 * The two loads of `npm run bench`, both one message per connection:
 *  - a bounded burst as ../shared/bench/peers.sh sends it: Postfix's smtp-source, `sessions`
 *    parallel sessions of `count` messages of `payloadOctets` (the node generator of
 *    ingress-smtp-load.ts, same shape, when smtp-source is not installed);
 *  - a steady rate: one message every 1/rate s on a connection of its own, whatever the replies
 *    take, noting when each 250 arrived and the relay's id in it.
 */

export const SMTP_SOURCE = '/usr/sbin/smtp-source';
const SENDER = 'sender@bench.test';
const RECIPIENT = 'rcpt@example.net';
/** Each step of a paced message (connect, greeting, every reply) has this long. */
const STEP_TIMEOUT_MS = 30_000;
const SEND_LIMIT_MS = 2 * STEP_TIMEOUT_MS;

export async function hasSmtpSource(): Promise<boolean> {
  return access(SMTP_SOURCE, constants.X_OK).then(
    () => true,
    () => false,
  );
}

export interface BurstOptions {
  readonly port: number;
  readonly count: number;
  readonly sessions: number;
  readonly payloadOctets: number;
  readonly timeoutMs: number;
}

export interface BurstResult {
  readonly generator: 'smtp-source' | 'node';
  /** performance.now() just before the first connection. */
  readonly startedAt: number;
  /** performance.now() when the generator finished (every message answered). */
  readonly finishedAt: number;
  readonly ok: boolean;
  /** What went wrong: smtp-source's last words, or failures by reply. */
  readonly problem?: string;
}

/** smtp-source as peers.sh runs it, stopped by PID at `timeoutMs`. */
async function smtpSource(options: BurstOptions): Promise<BurstResult> {
  const args = ['-s', `${options.sessions}`, '-m', `${options.count}`, '-l', `${options.payloadOctets}`];
  args.push('-M', 'bench.test', '-f', SENDER, '-t', RECIPIENT, `127.0.0.1:${options.port}`);
  const startedAt = performance.now();
  const child = spawn(SMTP_SOURCE, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-2000);
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  const [code, signal] = await exited;
  clearTimeout(timer);
  const finishedAt = performance.now();
  const ok = code === 0;
  const problem = ok ? undefined : `smtp-source exit ${code ?? signal}: ${stderr.trim().split('\n').pop()}`;
  return { generator: 'smtp-source', startedAt, finishedAt, ok, ...(problem ? { problem } : {}) };
}

/** The same shape from node (ingress-smtp-load.ts) for a machine without Postfix's tools. */
async function nodeBurst(options: BurstOptions): Promise<BurstResult> {
  const startedAt = performance.now();
  const load = await runLoad({
    port: options.port,
    sessions: options.sessions,
    content: smallMessage(options.payloadOctets),
    durationMs: options.timeoutMs,
    maxMessages: options.count,
    idleTimeoutMs: 60_000,
  });
  const ok = load.accepted === options.count;
  const problem = ok
    ? undefined
    : `accepted ${load.accepted} of ${options.count}: ${JSON.stringify(load.failures)}`;
  return { generator: 'node', startedAt, finishedAt: performance.now(), ok, ...(problem ? { problem } : {}) };
}

export async function runBurst(options: BurstOptions): Promise<BurstResult> {
  return (await hasSmtpSource()) ? smtpSource(options) : nodeBurst(options);
}

export interface PacedOptions {
  readonly port: number;
  /** Messages per second. */
  readonly rate: number;
  readonly durationMs: number;
  readonly messageOctets: number;
  /** Connections open at once at most (QUIT included); a message due at the cap waits (and is late). */
  readonly maxInFlight: number;
}

export interface PacedResult {
  /** performance.now() of each 250, by the relay's id (`queued as <id>`). */
  readonly acceptedAt: Map<string, number>;
  readonly attempted: number;
  /** Messages that started more than 50 ms after their due time (the generator fell behind). */
  readonly late: number;
  readonly elapsedMs: number;
  readonly failures: Readonly<Record<string, number>>;
}

/**
 * One message on a connection of its own: `accepted` resolves with the 250 line at the moment it
 * came, `closed` once the connection is gone (after QUIT, or on an error).
 */
function sendOne(
  port: number,
  message: Buffer,
): { accepted: Promise<{ reply: string; at: number }>; closed: Promise<void> } {
  let closedResolve: () => void = () => undefined;
  const ended = new Promise<void>((resolve) => (closedResolve = resolve));
  // Bounded even if 'end' never came: past socketTimeout, the connection is as good as gone.
  const closed = Promise.race([ended, sleep(SEND_LIMIT_MS, undefined, { ref: false })]);
  const accepted = new Promise<{ reply: string; at: number }>((resolve, reject) => {
    const connection = new SMTPConnection({
      host: '127.0.0.1',
      port,
      name: 'client.bench.test',
      ignoreTLS: true,
      connectionTimeout: STEP_TIMEOUT_MS,
      greetingTimeout: STEP_TIMEOUT_MS,
      socketTimeout: STEP_TIMEOUT_MS,
    });
    const fail = (error: Error): void => {
      connection.close();
      reject(error);
    };
    connection.on('error', fail);
    connection.once('end', closedResolve);
    connection.connect((error) => {
      if (error) return fail(error);
      connection.send({ from: SENDER, to: [RECIPIENT] }, message, (sendError, info) => {
        const at = performance.now();
        if (sendError || !info) return fail(sendError ?? new Error('no reply'));
        // Like smtp-source: QUIT belongs to the session, not to the message.
        connection.quit();
        resolve({ reply: info.response, at });
      });
    });
  });
  return { accepted, closed };
}

/** `rate` messages per second for `durationMs`, each message due at a fixed time from the start. */
export async function runPaced(options: PacedOptions): Promise<PacedResult> {
  const chunks: Buffer[] = [];
  await smallMessage(options.messageOctets).writeTo(async (chunk) => {
    chunks.push(chunk);
  });
  const message = Buffer.concat(chunks);
  const total = Math.floor((options.rate * options.durationMs) / 1000);
  const intervalMs = 1000 / options.rate;
  const acceptedAt = new Map<string, number>();
  const failures: Record<string, number> = {};
  const fail = (reason: string): void => {
    failures[reason] = (failures[reason] ?? 0) + 1;
  };
  const inFlight = new Set<Promise<void>>();
  let late = 0;
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const due = started + i * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    while (inFlight.size >= options.maxInFlight) await Promise.race(inFlight);
    if (performance.now() - due > 50) late++;
    const { accepted, closed } = sendOne(options.port, message);
    const run = accepted.then(
      ({ reply, at }) => {
        const id = /queued as (\S+)/.exec(reply)?.[1];
        if (id) acceptedAt.set(id, at);
        else fail(reply);
      },
      (error: unknown) => fail(error instanceof Error ? error.message : String(error)),
    );
    const tracked = Promise.all([run, closed]).then(() => {
      inFlight.delete(tracked);
    });
    inFlight.add(tracked);
  }
  await Promise.all(inFlight);
  return {
    acceptedAt,
    attempted: total,
    late,
    elapsedMs: performance.now() - started,
    failures,
  };
}
