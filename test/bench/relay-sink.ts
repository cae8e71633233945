import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The sink of `npm run bench`: the relay's smart host. Like Postfix's `smtp-sink -c` it answers
 * every command with a positive reply (PIPELINING, 8BITMIME and SIZE offered, no STARTTLS) and
 * counts messages; it also notes, per message, when its final "." arrived and the relay's id from
 * the relay's Received header (`... with ESMTP id <id>;`, the id of the client's `queued as <id>`),
 * so that the bench can join a message's acceptance to its arrival. Listens on 127.0.0.1 only.
 */

/** The relay's Received header is the first header: the id is within the first lines. */
const HEAD_OCTETS = 2048;
const RELAY_ID = / id ([0-9a-z]+);/;
const EHLO_REPLY = '250-sink.bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n';

export class CountingSink {
  /** Arrival (performance.now()) of each message, by the relay's id. */
  readonly arrivals = new Map<string, number>();
  /** Arrival of every message counted, in order (the N-th message's time ends a burst). */
  readonly arrivalTimes: number[] = [];
  /** Messages that arrived again under an id already seen (at-least-once delivery shows here). */
  duplicates = 0;
  /** Messages without a relay id in their head. */
  withoutId = 0;
  private count = 0;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server = createServer({ noDelay: true }, (socket) => this.serve(socket));

  async start(): Promise<number> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const address = this.server.address();
    if (typeof address !== 'object' || address === null) throw new Error('the sink did not bind');
    return address.port;
  }

  /** Messages counted so far (duplicates included, like smtp-sink's counter). */
  counted(): number {
    return this.count;
  }

  /**
   * Resolves once `target` messages are counted, or with false when `deadline` (performance.now())
   * passes or nothing new arrives for `stallMs` once `stalled()` says no more is coming.
   */
  async waitForCount(
    target: number,
    deadline: number,
    stallMs: number,
    stalled: () => boolean,
  ): Promise<boolean> {
    let seen = this.count;
    let lastProgress = performance.now();
    while (this.count < target) {
      const now = performance.now();
      if (now >= deadline) return false;
      if (this.count !== seen) {
        seen = this.count;
        lastProgress = now;
      } else if (stalled() && now - lastProgress >= stallMs) {
        return false;
      }
      await sleep(10);
    }
    return true;
  }

  async stop(): Promise<void> {
    const closed = once(this.server, 'close');
    this.server.close();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.setEncoding('latin1');
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.write('220 sink.bench ESMTP\r\n');
    // `lines` holds what is not yet a whole command; in DATA, `tail` the last octets seen (the
    // end marker may span chunks) and `head` the first HEAD_OCTETS of the message.
    let lines = '';
    let inData = false;
    let tail = '';
    let head = '';
    let quitting = false;
    const command = (line: string): string => {
      const verb = line.slice(0, 4).toUpperCase();
      switch (verb) {
        case 'EHLO':
          return EHLO_REPLY;
        case 'DATA':
          inData = true;
          tail = '\r\n';
          head = '';
          return '354 End data with <CR><LF>.<CR><LF>\r\n';
        case 'QUIT':
          quitting = true;
          return '221 2.0.0 Bye\r\n';
        default:
          return '250 2.0.0 Ok\r\n';
      }
    };
    socket.on('data', (chunk: string) => {
      let input = chunk;
      let out = '';
      while (input.length > 0 && !quitting) {
        if (inData) {
          const joined = tail + input;
          const end = joined.indexOf('\r\n.\r\n');
          if (head.length < HEAD_OCTETS) head += input.slice(0, HEAD_OCTETS - head.length);
          if (end === -1) {
            tail = joined.slice(-4);
            break;
          }
          inData = false;
          out += this.arrived(head);
          input = joined.slice(end + 5);
          continue;
        }
        lines += input;
        input = '';
        let eol: number;
        while (!inData && !quitting && (eol = lines.indexOf('\r\n')) !== -1) {
          const line = lines.slice(0, eol);
          lines = lines.slice(eol + 2);
          out += command(line);
        }
        if (inData) {
          // What followed DATA in the same chunk is the message.
          input = lines;
          lines = '';
        }
      }
      if (socket.writableEnded) return;
      if (quitting) socket.end(out);
      else if (out) socket.write(out);
    });
  }

  private arrived(head: string): string {
    const at = performance.now();
    this.arrivalTimes.push(at);
    this.count++;
    const id = RELAY_ID.exec(head)?.[1];
    if (id === undefined) this.withoutId++;
    else if (this.arrivals.has(id)) this.duplicates++;
    else this.arrivals.set(id, at);
    return `250 2.0.0 Ok: queued as ${this.count}\r\n`;
  }
}
