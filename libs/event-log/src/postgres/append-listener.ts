import pg from 'pg';
import type { EventLogLogger } from '../event-log.port.js';
import { CONNECT_TIMEOUT_MS, RECONNECT_MAX_MS, RECONNECT_MIN_MS } from './connection-timing.js';

export interface AppendListenerOptions {
  readonly url: string;
  readonly channel: string;
  readonly applicationName: string;
  readonly logger: EventLogLogger;
  /** Each NOTIFY of the channel, with its payload (the event types appended). */
  onAppend(payload: string | undefined): void;
  /** LISTEN was re-established after a loss: appends made meanwhile sent nothing that arrived. */
  onGap(): void;
}

/**
 * One LISTEN connection per event log (so per process) for all its subscriptions. Postgres sends
 * a notification to every listening session; one session per subscription made every append cost
 * a message to each of them, and a read of it in Node, whether or not the group took the types.
 */
export class AppendListener {
  /** Settles once the first attempt to LISTEN is over, whether it worked or is being retried. */
  readonly ready: Promise<void>;
  private markReady!: () => void;
  private client: pg.Client | undefined;
  private stopping = false;
  private retry: NodeJS.Timeout | undefined;
  private delay = RECONNECT_MIN_MS;
  private listenedBefore = false;

  constructor(private readonly options: AppendListenerOptions) {
    this.ready = new Promise<void>((resolve) => {
      this.markReady = resolve;
    });
    void this.listen();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async listen(): Promise<void> {
    const { options } = this;
    const client = new pg.Client({
      connectionString: options.url,
      application_name: options.applicationName,
      keepAlive: true,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    this.client = client;
    let lost = false;
    const lose = (error: Error): void => {
      if (lost || this.stopping || this.client !== client) return;
      lost = true;
      options.logger.warn(`event-log: append listener lost, retrying in ${this.delay} ms: ${error.message}`);
      this.client = undefined;
      void client.end().catch(() => undefined);
      this.retry = setTimeout(() => void this.listen(), this.delay);
      this.delay = Math.min(this.delay * 2, RECONNECT_MAX_MS);
    };
    client.on('error', lose);
    client.on('end', () => lose(new Error('connection ended')));
    client.on('notification', (message: pg.Notification) => {
      if (this.client === client) options.onAppend(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${options.channel}`);
    } catch (error) {
      lose(error instanceof Error ? error : new Error(String(error)));
      this.markReady();
      return;
    }
    this.delay = RECONNECT_MIN_MS;
    if (this.listenedBefore) options.onGap();
    this.listenedBefore = true;
    this.markReady();
  }
}
