import type { X509Certificate } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

/**
 * A raw SMTP client for tests that must see exact reply lines and send exact bytes (pipelining,
 * malformed end-of-data sequences). Replies are parsed per RFC 5321 4.2: continuation lines use
 * `-` after the code, the last uses a space.
 */
export class SmtpTestClient {
  private buffer = '';
  private readonly replies: string[][] = [];
  private waiters: ((reply: string[]) => void)[] = [];
  private current: string[] = [];
  private closed = false;
  private closeWaiters: (() => void)[] = [];

  private constructor(private socket: Socket | TLSSocket) {
    this.attach(socket);
  }

  /** Connects and reads the greeting (returned). With `tls`, the connection is TLS from the start. */
  static async connect(
    port: number,
    options: { tls?: boolean; host?: string } = {},
  ): Promise<{
    client: SmtpTestClient;
    greeting: string[];
  }> {
    const host = options.host ?? '127.0.0.1';
    const socket = await new Promise<Socket | TLSSocket>((resolve, reject) => {
      const s = options.tls
        ? tlsConnect({ port, host, rejectUnauthorized: false }, () => resolve(s))
        : netConnect({ port, host }, () => resolve(s));
      s.once('error', reject);
    });
    const client = new SmtpTestClient(socket);
    const greeting = await client.reply();
    return { client, greeting };
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.closeWaiters.splice(0)) w();
    });
    socket.on('error', () => undefined);
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let index: number;
    while ((index = this.buffer.indexOf('\r\n')) !== -1) {
      const line = this.buffer.slice(0, index);
      this.buffer = this.buffer.slice(index + 2);
      this.current.push(line);
      if (!/^\d{3}-/.test(line)) {
        const reply = this.current;
        this.current = [];
        const waiter = this.waiters.shift();
        if (waiter) waiter(reply);
        else this.replies.push(reply);
      }
    }
  }

  /** The next complete reply (all its lines). */
  async reply(timeoutMs = 30_000): Promise<string[]> {
    const queued = this.replies.shift();
    if (queued) return queued;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no SMTP reply in time')), timeoutMs);
      this.waiters.push((reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
    });
  }

  /** Writes raw bytes (nothing appended). */
  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Sends one command line and returns its reply. */
  async command(line: string): Promise<string[]> {
    this.write(line + '\r\n');
    return this.reply();
  }

  /** Sends a command and returns only the last line of its reply. */
  async line(command: string): Promise<string> {
    const reply = await this.command(command);
    return reply[reply.length - 1] ?? '';
  }

  /** STARTTLS, then the TLS handshake on the same socket. */
  async startTls(): Promise<string> {
    const reply = await this.line('STARTTLS');
    if (!reply.startsWith('220')) return reply;
    const plain = this.socket;
    plain.removeAllListeners('data');
    this.socket = await new Promise<TLSSocket>((resolve, reject) => {
      const secure = tlsConnect({ socket: plain, rejectUnauthorized: false }, () => resolve(secure));
      secure.once('error', reject);
    });
    this.attach(this.socket);
    return reply;
  }

  /** The certificate the server presented, once the session is TLS (implicit or after STARTTLS). */
  peerCertificate(): X509Certificate | undefined {
    return 'getPeerX509Certificate' in this.socket ? this.socket.getPeerX509Certificate() : undefined;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async waitForClose(timeoutMs = 10_000): Promise<void> {
    if (this.closed) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('connection stayed open')), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** AUTH PLAIN initial response (RFC 4616). */
export const authPlain = (username: string, password: string): string =>
  Buffer.from(`\0${username}\0${password}`).toString('base64');
