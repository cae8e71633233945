import SMTPConnection from 'nodemailer/lib/smtp-connection';

export interface OutboundPoolOptions {
  /** EHLO name (RELAY_HOSTNAME). */
  readonly name: string;
  /** Connections per destination host:port. */
  readonly perHost: number;
  /** An idle connection is closed after this long. */
  readonly idleMs?: number;
  /** Transactions sent over one connection before it is replaced. */
  readonly maxMessagesPerConnection?: number;
  readonly connectTimeoutMs?: number;
  readonly socketTimeoutMs?: number;
}

/** A connection checked out of the pool; `release` gives it back (or closes it). */
export interface PooledConnection {
  readonly connection: SMTPConnection;
  /** The host's EHLO reply said SMTPUTF8 / 8BITMIME, as nodemailer found it. */
  readonly host: string;
  release(reusable: boolean): void;
}

interface Idle {
  readonly connection: SMTPConnection;
  readonly timer: NodeJS.Timeout;
}

interface HostState {
  open: number;
  readonly idle: Idle[];
  readonly waiters: (() => void)[];
}

/**
 * Outbound SMTP connections pooled per destination, capped per host, reused across messages.
 * nodemailer's client sets TCP_NODELAY on every socket (without it a client loses ~40 ms per
 * message to delayed ACKs) and upgrades with STARTTLS whenever offered;
 * the certificate is not verified, since MX hosts rarely present one for their own name
 * (opportunistic TLS, RFC 7435).
 */
export class OutboundPool {
  private readonly hosts = new Map<string, HostState>();
  private readonly sentBy = new WeakMap<SMTPConnection, number>();
  private closed = false;

  constructor(private readonly options: OutboundPoolOptions) {}

  async acquire(host: string, port: number): Promise<PooledConnection> {
    if (this.closed) throw new Error('outbound pool closed');
    const key = `${host}:${port}`;
    const state = this.stateOf(key);
    for (;;) {
      const idle = state.idle.pop();
      if (idle) {
        clearTimeout(idle.timer);
        if (!idle.connection.destroyed) return this.checkedOut(key, host, idle.connection);
        state.open--;
        continue;
      }
      if (state.open < this.options.perHost) {
        state.open++;
        try {
          const connection = await this.connect(host, port);
          return this.checkedOut(key, host, connection);
        } catch (error) {
          state.open--;
          this.wakeOne(state);
          throw error;
        }
      }
      await new Promise<void>((resolve) => state.waiters.push(resolve));
    }
  }

  /** Closes every idle connection; connections in use close when released. */
  close(): void {
    this.closed = true;
    for (const state of this.hosts.values()) {
      for (const idle of state.idle.splice(0)) {
        clearTimeout(idle.timer);
        idle.connection.quit();
      }
      for (const wake of state.waiters.splice(0)) wake();
    }
  }

  private stateOf(key: string): HostState {
    let state = this.hosts.get(key);
    if (!state) {
      state = { open: 0, idle: [], waiters: [] };
      this.hosts.set(key, state);
    }
    return state;
  }

  private wakeOne(state: HostState): void {
    state.waiters.shift()?.();
  }

  private checkedOut(key: string, host: string, connection: SMTPConnection): PooledConnection {
    let released = false;
    return {
      connection,
      host,
      release: (reusable) => {
        if (released) return;
        released = true;
        this.release(key, connection, reusable);
      },
    };
  }

  private release(key: string, connection: SMTPConnection, reusable: boolean): void {
    const state = this.stateOf(key);
    const sent = (this.sentBy.get(connection) ?? 0) + 1;
    this.sentBy.set(connection, sent);
    const retire = (): void => {
      state.open--;
      connection.quit();
      this.wakeOne(state);
    };
    if (
      !reusable ||
      this.closed ||
      connection.destroyed ||
      sent >= (this.options.maxMessagesPerConnection ?? 100)
    ) {
      retire();
      return;
    }
    // No RSET: the final reply to DATA ends the transaction (RFC 5321 4.1.1.4), and a transaction
    // that failed midway is not reusable. nodemailer's own pool does the same; an RSET per
    // message cost a round trip with the remote host while holding one of its few connections.
    const waiter = state.waiters.shift();
    const timer = setTimeout(() => {
      const index = state.idle.findIndex((i) => i.connection === connection);
      if (index >= 0) state.idle.splice(index, 1);
      retire();
    }, this.options.idleMs ?? 30_000);
    timer.unref();
    state.idle.push({ connection, timer });
    waiter?.();
  }

  private connect(host: string, port: number): Promise<SMTPConnection> {
    const connection = new SMTPConnection({
      host,
      port,
      name: this.options.name,
      opportunisticTLS: true,
      tls: { rejectUnauthorized: false },
      // MX hosts and smart hosts may live on private addresses (and on loopback in tests).
      allowInternalNetworkInterfaces: true,
      connectionTimeout: this.options.connectTimeoutMs ?? 15_000,
      greetingTimeout: this.options.connectTimeoutMs ?? 15_000,
      socketTimeout: this.options.socketTimeoutMs ?? 120_000,
    });
    return new Promise((resolve, reject) => {
      // nodemailer reports a failed connect (refused, unreachable, timed out, TLS) only as an
      // 'error' event: the connect callback hears of success and of a close before the greeting.
      // Without this the attempt, its per-host slot and a graceful stop would wait forever.
      connection.once('error', reject);
      // Errors after connect surface through the send callbacks; keep them from being unhandled.
      connection.on('error', () => undefined);
      connection.connect((error) => (error ? reject(error) : resolve(connection)));
    });
  }
}
