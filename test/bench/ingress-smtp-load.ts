import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The load generator of `npm run bench:ingress`, in the shape of Postfix's smtp-source as
 * ../shared/bench/peers.sh runs it: one message per connection (connect, EHLO, MAIL, RCPT, DATA,
 * QUIT), each command waiting for its reply (no pipelining), over a fixed number of parallel
 * sessions. It times each message from the moment the final "." is written to its reply.
 */

const SENDER = 'sender@bench.test';
const RECIPIENT = 'rcpt@example.net';
/** 57 random octets in base64: the 76-character lines of a MIME body. */
const LINE_OCTETS = 78;
const LINES_PER_BLOCK = 840;

/** A client connection that yields the last line of each reply (RFC 5321 4.2: "250-" continues). */
class SmtpSession {
  private buffered = '';
  private readonly replies: string[] = [];
  private waiter: { resolve(line: string): void; reject(error: Error): void } | undefined;
  private drainWaiter: { resolve(): void; reject(error: Error): void } | undefined;
  private failure: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('drain', () => {
      this.drainWaiter?.resolve();
      this.drainWaiter = undefined;
    });
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  /** Connects; the socket is destroyed when it sees no traffic for `idleTimeoutMs`. */
  static async open(port: number, idleTimeoutMs: number): Promise<SmtpSession> {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true });
    socket.setTimeout(idleTimeoutMs, () => socket.destroy(new Error(`no traffic for ${idleTimeoutMs} ms`)));
    const session = new SmtpSession(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return session;
  }

  /** The final line of the next reply. */
  reply(): Promise<string> {
    const line = this.replies.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  async command(line: string, expectedCode: string): Promise<string> {
    this.socket.write(`${line}\r\n`);
    return expectReply(await this.reply(), expectedCode, line);
  }

  /** Writes and waits while the socket's buffer is full, so a large body is never queued whole. */
  async write(chunk: Buffer | string): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.socket.write(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      this.drainWaiter = { resolve, reject };
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let end: number;
    while ((end = this.buffered.indexOf('\r\n')) !== -1) {
      const line = this.buffered.slice(0, end);
      this.buffered = this.buffered.slice(end + 2);
      if (line.charAt(3) === '-') continue;
      if (this.waiter) {
        this.waiter.resolve(line);
        this.waiter = undefined;
      } else {
        this.replies.push(line);
      }
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.waiter?.reject(this.failure);
    this.waiter = undefined;
    this.drainWaiter?.reject(this.failure);
    this.drainWaiter = undefined;
  }
}

export class SmtpReplyError extends Error {
  constructor(readonly reply: string) {
    super(reply);
  }
}

function expectReply(line: string, code: string, after: string): string {
  if (!line.startsWith(code)) throw new SmtpReplyError(`${after.split(' ')[0] ?? after}: ${line}`);
  return line;
}

function headers(size: string): string {
  return [
    `From: Bench Sender <${SENDER}>`,
    `To: <${RECIPIENT}>`,
    `Subject: bench ${size}`,
    `Date: ${new Date().toUTCString()}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: 7bit',
    '',
    '',
  ].join('\r\n');
}

/** 840 lines of 76 base64 characters: 65 520 octets, written again and again for a large body. */
function bodyBlock(): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < LINES_PER_BLOCK; i++) lines.push(randomBytes(57).toString('base64'));
  return Buffer.from(lines.join('\r\n') + '\r\n', 'latin1');
}

/** What goes out after DATA's 354, up to (not including) the final ".\r\n". */
export interface MessageContent {
  /** Octets of the message (headers and body). */
  readonly octets: number;
  writeTo(write: (chunk: Buffer) => Promise<void>): Promise<void>;
}

/** A message of about `octets` (headers included), sent in one write like smtp-source's. */
export function smallMessage(octets: number): MessageContent {
  const head = headers(`${octets} octets`);
  const lines = Math.max(1, Math.ceil((octets - head.length) / LINE_OCTETS));
  const block = bodyBlock();
  const body = block.subarray(0, Math.min(lines, LINES_PER_BLOCK) * LINE_OCTETS);
  const message = Buffer.concat([Buffer.from(head, 'latin1'), body]);
  return { octets: message.length, writeTo: (write) => write(message) };
}

/**
 * A body of at least `bodyOctets` in 78-octet lines, streamed from one 64 KB block reused for each
 * write: the generator never holds the message whole.
 */
export function largeMessage(bodyOctets: number): MessageContent {
  const head = Buffer.from(headers(`${bodyOctets} octets`), 'latin1');
  const block = bodyBlock();
  const lines = Math.ceil(bodyOctets / LINE_OCTETS);
  return {
    octets: head.length + lines * LINE_OCTETS,
    async writeTo(write) {
      await write(head);
      for (let left = lines; left > 0; left -= LINES_PER_BLOCK) {
        await write(left >= LINES_PER_BLOCK ? block : block.subarray(0, left * LINE_OCTETS));
      }
    },
  };
}

export interface Delivery {
  /** The reply to the final ".". */
  readonly reply: string;
  /** From the final "." written to that reply. */
  readonly latencyMs: number;
}

/** One message over one connection: connect, EHLO, MAIL, RCPT, DATA, QUIT. */
export async function deliver(
  port: number,
  content: MessageContent,
  idleTimeoutMs: number,
): Promise<Delivery> {
  const session = await SmtpSession.open(port, idleTimeoutMs);
  try {
    expectReply(await session.reply(), '220', 'greeting');
    await session.command('EHLO client.bench.test', '250');
    await session.command(`MAIL FROM:<${SENDER}>`, '250');
    await session.command(`RCPT TO:<${RECIPIENT}>`, '250');
    await session.command('DATA', '354');
    await content.writeTo((chunk) => session.write(chunk));
    await session.write('.\r\n');
    const sent = performance.now();
    const reply = await session.reply();
    const latencyMs = performance.now() - sent;
    // Like smtp-source: QUIT and its 221 belong to the session, not to the message's latency.
    await session.command('QUIT', '221').catch(() => undefined);
    return { reply, latencyMs };
  } finally {
    session.close();
  }
}

export interface LoadOptions {
  readonly port: number;
  readonly sessions: number;
  readonly content: MessageContent;
  /** No message starts after this long. */
  readonly durationMs: number;
  /** No message starts after this many. */
  readonly maxMessages: number;
  readonly idleTimeoutMs: number;
}

export interface LoadResult {
  readonly attempted: number;
  readonly accepted: number;
  readonly elapsedMs: number;
  /** DATA-end-to-250 of each accepted message, in ms. */
  readonly latenciesMs: Float64Array;
  /** Failures by reply line or error message. */
  readonly failures: Readonly<Record<string, number>>;
}

/**
 * `sessions` loops, each sending one message per connection until the duration or the message
 * cap is reached; every step of a message is bounded by the idle timeout.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const latencies = new Float64Array(options.maxMessages);
  const failures: Record<string, number> = {};
  let attempted = 0;
  let accepted = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;
  const fail = (reason: string): void => {
    failures[reason] = (failures[reason] ?? 0) + 1;
  };
  const session = async (): Promise<void> => {
    while (performance.now() < deadline && attempted < options.maxMessages) {
      attempted++;
      try {
        const { reply, latencyMs } = await deliver(options.port, options.content, options.idleTimeoutMs);
        if (reply.startsWith('250')) latencies[accepted++] = latencyMs;
        else fail(reply.replace(/queued as \S+/, 'queued as <id>'));
      } catch (error) {
        fail(error instanceof Error ? error.message : String(error));
        // A refused connection fails at once: do not spin on it.
        await sleep(10);
      }
    }
  };
  await Promise.all(Array.from({ length: options.sessions }, session));
  return {
    attempted,
    accepted,
    elapsedMs: performance.now() - started,
    latenciesMs: latencies.slice(0, accepted),
    failures,
  };
}

/** Nearest-rank percentile of `values` (sorted here), or NaN when there are none. */
export function percentile(values: Float64Array, p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = values.slice().sort();
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}
