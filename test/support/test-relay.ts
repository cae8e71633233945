import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, loadConfig, silentLogger, type Logger, type RelayConfig } from '@relay/config';
import { KafkaEventLog, PostgresEventLog, type EventLog } from '@relay/event-log';
import { startRelay, type RunningRelay } from '@relay/relay';
import { createTestDatabase, type TestDatabase } from '@relay/testing';

export const ADMIN_TOKEN = 'test-admin-token';

/** A parsed JSON response; tests read the fields they expect. */
export type JsonObject = { readonly id?: string } & Readonly<Record<string, unknown>>;

export interface TestRelay {
  readonly relay: RunningRelay;
  readonly config: RelayConfig;
  readonly db: TestDatabase;
  readonly dataDir: string;
  /** A plain (STARTTLS) port and an implicit-TLS port. */
  readonly smtpPort: number;
  readonly smtpsPort: number;
  readonly adminUrl: string;
  /** Admin API call with the bearer token; returns status and parsed JSON. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: JsonObject }>;
  /** Restarts the relay on the same database and data directory (a process restart). */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /**
   * What stop() does last: drops the database and removes the data directory this relay owns
   * (none when it shares or joins another's; the directory stays under a dataRoot). For a process
   * whose stop hung or failed.
   */
  removeOwned(): Promise<void>;
}

/**
 * The whole relay as `npm start` runs it, in this process, on a database and data directory of
 * its own, listening on 127.0.0.1 ports chosen by the OS.
 */
export async function startTestRelay(
  env: Record<string, string> = {},
  options: {
    /** A second relay of the same installation in this process: same database, data directory and log. */
    readonly shareWith?: TestRelay;
    /**
     * The same, for a relay in another process (whose Kafka settings, if any, come in `env`): the
     * database and data directory stay when this one stops; their owner removes them.
     */
    readonly join?: { readonly databaseUrl: string; readonly dataDir: string };
    /**
     * Makes the data directory under this directory and leaves it there at stop; whoever made the
     * root removes it. The benches keep every run's spool until they end, so that removing one
     * run's files cannot slow the file creation of the next (see bench-support.ts).
     */
    readonly dataRoot?: string;
    /**
     * Where the relay logs, across restarts, for a test that reads the lines (createLogger with a
     * writer of its own). By default nothing is logged unless RELAY_TEST_LOGS is set.
     */
    readonly logger?: Logger;
  } = {},
): Promise<TestRelay> {
  const { shareWith, join: joined, dataRoot } = options;
  const shared = shareWith ?? joined;
  const db: TestDatabase = shareWith
    ? shareWith.db
    : joined
      ? joinedDatabase(joined.databaseUrl)
      : await createTestDatabase('relay');
  const dataDir =
    shareWith?.dataDir ?? joined?.dataDir ?? (await mkdtemp(join(dataRoot ?? tmpdir(), 'relay-test-')));
  /** Drops the database and removes the data directory this call made (none when shared). */
  const removeOwned = async (): Promise<void> => {
    if (shared) return;
    // Both are started whatever the other does; a failure still rejects.
    await Promise.all([db.drop(), dataRoot ? undefined : rm(dataDir, { recursive: true, force: true })]);
  };
  const logger = options.logger ?? (process.env.RELAY_TEST_LOGS ? createLogger('debug') : silentLogger);
  let config: RelayConfig;
  let relay: RunningRelay;
  try {
    config = loadConfig({
      ...(shareWith ? sharedEnv(shareWith.config) : {}),
      ...localRelayEnv(db.url, dataDir),
      ADMIN_TOKEN,
      RELAY_HOSTNAME: 'relay.test',
      LOG_LEVEL: 'error',
      ...env,
    });
    relay = await startRelay(config, logger);
  } catch (error) {
    // A rejected start returns no handle, so nobody else could remove what this call made. The
    // start's error is the one to see, whatever the clean-up meets.
    await removeOwned().catch(() => undefined);
    throw error;
  }
  const ports = (): { smtpPort: number; smtpsPort: number; adminUrl: string } => {
    const listeners = relay.smtpListeners();
    return {
      smtpPort: listeners.find((l) => !l.implicitTls)?.port ?? 0,
      smtpsPort: listeners.find((l) => l.implicitTls)?.port ?? 0,
      adminUrl: relay.adminUrl() ?? '',
    };
  };
  const handle: TestRelay = {
    get relay() {
      return relay;
    },
    config,
    db,
    dataDir,
    get smtpPort() {
      return ports().smtpPort;
    },
    get smtpsPort() {
      return ports().smtpsPort;
    },
    get adminUrl() {
      return ports().adminUrl;
    },
    async admin(method, path, body) {
      const response = await fetch(`${ports().adminUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, body: text ? (JSON.parse(text) as JsonObject) : {} };
    },
    async restart() {
      await relay.stop();
      relay = await startRelay(config, logger);
    },
    async stop() {
      await relay.stop();
      await handle.removeOwned();
    },
    removeOwned,
  };
  return handle;
}

/**
 * What every relay of the tests and benches is given: a database and data directory of its own,
 * and ports chosen by the OS on 127.0.0.1 (the start-up summary and smtpListeners() tell them).
 */
export function localRelayEnv(databaseUrl: string, dataDir: string): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    RELAY_DATA_DIR: dataDir,
    SMTP_PORTS: '0',
    SMTPS_PORTS: '0',
    ADMIN_PORT: '0',
    TRACKER_PORT: '0',
    BOUNCE_SMTP_PORT: '0',
    LISTEN_HOST: '127.0.0.1',
  };
}

/** Another process's test database: this relay uses it and leaves dropping it to its owner. */
function joinedDatabase(url: string): TestDatabase {
  return { name: new URL(url).pathname.slice(1), url, drop: () => Promise.resolve() };
}

/** The settings a second relay needs to join the first one's event log. */
function sharedEnv(config: RelayConfig): Record<string, string> {
  return config.kafkaBrokers
    ? {
        KAFKA_BROKERS: config.kafkaBrokers.join(','),
        KAFKA_TOPIC: config.kafkaTopic,
        KAFKA_GROUP_PREFIX: config.kafkaGroupPrefix,
      }
    : {};
}

/** A reader of the test relay's event log (Postgres, or Kafka when the relay runs on it). */
export async function openLogReader(db: TestDatabase, config?: RelayConfig): Promise<EventLog> {
  if (config?.kafkaBrokers) {
    return KafkaEventLog.connect({
      brokers: config.kafkaBrokers,
      topic: config.kafkaTopic,
      logger: silentLogger,
    });
  }
  return PostgresEventLog.connect({ url: db.url, logger: silentLogger });
}

let kafkaNamespaces = 0;

/** Settings that put a test relay on the Kafka event log, on a topic and groups of its own. */
export function kafkaEnv(brokers: readonly string[]): Record<string, string> {
  const id = `${process.pid}-${Date.now().toString(36)}-${++kafkaNamespaces}`;
  return {
    KAFKA_BROKERS: brokers.join(','),
    KAFKA_TOPIC: `relay.test.${id}`,
    KAFKA_GROUP_PREFIX: `test.${id}.`,
    KAFKA_PARTITIONS: '3',
  };
}
