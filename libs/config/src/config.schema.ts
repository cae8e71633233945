import { hostname } from 'node:os';
import { RESEND_WINDOW_MS } from '@relay/domain';

/**
 * The one typed schema of the relay's configuration. Every key is an environment variable with a
 * type, a default and a one-line description; README's config table is generated from this list
 * (npm run docs:config) and a unit test keeps the two equal.
 */

type Parser<T> = (raw: string) => T;

export interface ConfigKey<T> {
  readonly env: string;
  readonly type: string;
  /** Default as shown in the README. */
  readonly defaultText: string;
  readonly description: string;
  /** Parses the raw value, or the default when the variable is unset or empty. */
  readonly parse: Parser<T>;
  readonly fallback: () => T;
}

function key<T>(
  env: string,
  type: string,
  defaultText: string,
  description: string,
  parse: Parser<T>,
  fallback: () => T,
): ConfigKey<T> {
  return { env, type, defaultText, description, parse, fallback };
}

export class ConfigError extends Error {}

const integer =
  (min: number, max: number): Parser<number> =>
  (raw) => {
    if (!/^\d+$/.test(raw)) throw new ConfigError(`expected a whole number, got "${raw}"`);
    const n = Number(raw);
    if (n < min || n > max) throw new ConfigError(`expected ${min}..${max}, got ${n}`);
    return n;
  };

const port = integer(0, 65535);

const portList: Parser<number[]> = (raw) =>
  raw
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((p) => port(p));

const bool: Parser<boolean> = (raw) => {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(`expected true or false, got "${raw}"`);
};

const text: Parser<string> = (raw) => raw;

const url =
  (protocols: readonly string[]): Parser<string> =>
  (raw) => {
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      throw new ConfigError(`expected a URL, got "${raw}"`);
    }
    if (!protocols.includes(parsed.protocol)) {
      throw new ConfigError(`expected a ${protocols.join(' or ')} URL, got "${raw}"`);
    }
    return raw.replace(/\/+$/, '');
  };

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const hostPort: Parser<HostPort> = (raw) => {
  const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(raw);
  if (!match?.[1] || !match[2]) throw new ConfigError(`expected host:port, got "${raw}"`);
  return { host: match[1].replace(/^\[|\]$/g, ''), port: port(match[2]) };
};

const brokerList: Parser<string[]> = (raw) =>
  raw.split(',').map((b) => {
    const broker = b.trim();
    hostPort(broker);
    return broker;
  });

const oneOf =
  <T extends string>(values: readonly T[]): Parser<T> =>
  (raw) => {
    if (!(values as readonly string[]).includes(raw)) {
      throw new ConfigError(`expected one of ${values.join(', ')}, got "${raw}"`);
    }
    return raw as T;
  };

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `5m`, `48h`, `2d` or plain milliseconds, as milliseconds. */
const duration: Parser<number> = (raw) => {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(raw.trim());
  if (!match?.[1]) throw new ConfigError(`expected a duration like 30s, 5m, 48h, got "${raw}"`);
  return Number(match[1]) * (DURATION_UNITS[match[2] ?? 'ms'] ?? 1);
};

const retention: Parser<number> = (raw) => {
  const ms = duration(raw);
  // Held mail can be resent this long after acceptance, so its body must still be there.
  if (ms < RESEND_WINDOW_MS) {
    throw new ConfigError(
      `must be at least ${RESEND_WINDOW_MS / 3_600_000}h (the resend window), got "${raw}"`,
    );
  }
  return ms;
};

const durationList: Parser<number[]> = (raw) => raw.split(',').map((d) => duration(d.trim()));

const none = <T>(): T | undefined => undefined;

export const ROLES = ['smtp-ingress', 'worker', 'projector', 'admin-api', 'tracker'] as const;
export type Role = (typeof ROLES)[number];

const roleList: Parser<Role[]> = (raw) => raw.split(',').map((r) => oneOf(ROLES)(r.trim()));

export const CONFIG_SCHEMA = {
  dataDir: key(
    'RELAY_DATA_DIR',
    'path',
    './var',
    'Data directory: embedded Postgres, spool, TLS certificate, secrets.',
    text,
    () => './var',
  ),
  databaseUrl: key<string | undefined>(
    'DATABASE_URL',
    'postgres URL',
    'embedded',
    'Postgres server to use; unset runs embedded Postgres under the data directory.',
    url(['postgres:', 'postgresql:']),
    none,
  ),
  kafkaBrokers: key<string[] | undefined>(
    'KAFKA_BROKERS',
    'host:port list',
    'none: Postgres log',
    'Kafka bootstrap brokers; set, the event log is Kafka, else Postgres.',
    brokerList,
    none,
  ),
  kafkaTopic: key(
    'KAFKA_TOPIC',
    'string',
    'relay.events',
    'Kafka topic of the event log.',
    text,
    () => 'relay.events',
  ),
  kafkaGroupPrefix: key(
    'KAFKA_GROUP_PREFIX',
    'string',
    'relay.',
    "Prefix of the relay's consumer group ids, to keep deployments sharing a cluster apart.",
    text,
    () => 'relay.',
  ),
  kafkaPartitions: key(
    'KAFKA_PARTITIONS',
    'integer',
    '12',
    'Partitions of the topic when the relay creates it (partitioned by account).',
    integer(1, 1000),
    () => 12,
  ),
  kafkaReplicationFactor: key(
    'KAFKA_REPLICATION_FACTOR',
    'integer',
    '1',
    'Replication factor of the topic when the relay creates it.',
    integer(1, 10),
    () => 1,
  ),
  roles: key<Role[]>(
    'RELAY_ROLES',
    'role list',
    'all',
    `Roles this process runs: ${ROLES.join(', ')}.`,
    roleList,
    () => [...ROLES],
  ),
  smtpPorts: key(
    'SMTP_PORTS',
    'port list',
    '2525,587,25',
    'Plain SMTP submission ports; STARTTLS is offered.',
    portList,
    () => [2525, 587, 25],
  ),
  smtpsPorts: key('SMTPS_PORTS', 'port list', '465', 'Implicit-TLS SMTP submission ports.', portList, () => [
    465,
  ]),
  listenHost: key(
    'LISTEN_HOST',
    'address',
    '0.0.0.0',
    'Address the SMTP and HTTP listeners bind to.',
    text,
    () => '0.0.0.0',
  ),
  maxConnectionsPerIp: key(
    'SMTP_MAX_CONNECTIONS_PER_IP',
    'integer',
    '50',
    'Concurrent SMTP connections allowed from one client IP.',
    integer(1, 100000),
    () => 50,
  ),
  maxRecipients: key(
    'SMTP_MAX_RECIPIENTS',
    'integer',
    '1000',
    'Recipients per message; more get 452 4.5.3.',
    integer(1, 100000),
    () => 1000,
  ),
  authMaxFailures: key(
    'SMTP_AUTH_MAX_FAILURES',
    'integer',
    '10',
    'Failed AUTH attempts from one IP (within 15 min) before it is refused for 15 min; slowed down before that.',
    integer(2, 1000),
    () => 10,
  ),
  smtpIdleTimeoutMs: key(
    'SMTP_IDLE_TIMEOUT_MS',
    'milliseconds',
    '60000',
    'An idle SMTP session is closed after this long.',
    integer(1000, 3600000),
    () => 60000,
  ),
  spool: key(
    'SPOOL',
    'local or postgres',
    'local',
    'Where message bodies live: a local directory under the data dir, or Postgres (ingress and workers on different machines).',
    oneOf(['local', 'postgres'] as const),
    () => 'local' as const,
  ),
  adminPort: key('ADMIN_PORT', 'port', '8025', 'Admin API, /health and /metrics.', port, () => 8025),
  trackerPort: key(
    'TRACKER_PORT',
    'port',
    '8080',
    'Public tracker: open pixel, click redirect, unsubscribe.',
    port,
    () => 8080,
  ),
  trackingBaseUrl: key(
    'TRACKING_BASE_URL',
    'URL',
    'http://localhost:8080',
    'Base of tracking URLs for accounts without a tracking domain.',
    url(['http:', 'https:']),
    () => 'http://localhost:8080',
  ),
  deliverySmartHost: key<HostPort | undefined>(
    'DELIVERY_SMART_HOST',
    'host:port',
    'none: MX lookup',
    'Send all outbound mail to this host instead of the MX hosts.',
    hostPort,
    none,
  ),
  bounceDomain: key<string | undefined>(
    'BOUNCE_DOMAIN',
    'domain',
    'RELAY_HOSTNAME',
    'Domain of the VERP return path (bounces+<token>@domain); its MX should reach the bounce listener.',
    text,
    none,
  ),
  bounceSmtpPort: key(
    'BOUNCE_SMTP_PORT',
    'port',
    '2526',
    'Listener that takes asynchronous bounces (DSNs) for the bounce domain; 0 picks a free port.',
    port,
    () => 2526,
  ),
  retrySchedule: key(
    'DELIVERY_RETRY_SCHEDULE',
    'duration list',
    '1m,5m,15m,30m,1h',
    'Waits between delivery attempts after a temporary failure; the last repeats.',
    durationList,
    () => [60_000, 300_000, 900_000, 1_800_000, 3_600_000],
  ),
  maxDeliveryAge: key(
    'DELIVERY_MAX_AGE',
    'duration',
    '48h',
    'A recipient still deferred this long after acceptance bounces as expired.',
    duration,
    () => 48 * 3_600_000,
  ),
  spoolRetention: key(
    'SPOOL_RETENTION',
    'duration',
    '4d',
    'Message bodies are removed this long after acceptance (hourly sweep); at least 72h and DELIVERY_MAX_AGE.',
    retention,
    () => 4 * 86_400_000,
  ),
  deliveryConcurrency: key(
    'DELIVERY_CONCURRENCY',
    'integer',
    '200',
    'Outbound SMTP transactions in flight per worker process.',
    integer(1, 10000),
    () => 200,
  ),
  perHostConcurrency: key(
    'DELIVERY_CONCURRENCY_PER_HOST',
    'integer',
    '20',
    'Outbound SMTP connections per destination host.',
    integer(1, 1000),
    () => 20,
  ),
  adminToken: key<string | undefined>(
    'ADMIN_TOKEN',
    'string',
    'generated at first start',
    'Bearer token of the admin API; generated, stored and printed when unset.',
    text,
    none,
  ),
  trackingSecret: key<string | undefined>(
    'TRACKING_SECRET',
    'string',
    'generated at first start',
    'HMAC key that signs tracking and unsubscribe tokens; kept under the data dir when unset.',
    text,
    none,
  ),
  dkimKeySecret: key<string | undefined>(
    'DKIM_KEY_SECRET',
    'string',
    'generated at first start',
    "Key that encrypts the accounts' DKIM private keys at rest; kept under the data dir when unset.",
    text,
    none,
  ),
  tlsCertFile: key<string | undefined>(
    'TLS_CERT_FILE',
    'path',
    'self-signed under the data dir',
    'PEM certificate for STARTTLS and implicit TLS.',
    text,
    none,
  ),
  tlsKeyFile: key<string | undefined>(
    'TLS_KEY_FILE',
    'path',
    'self-signed under the data dir',
    'PEM private key for the certificate.',
    text,
    none,
  ),
  hostname: key(
    'RELAY_HOSTNAME',
    'hostname',
    'os hostname',
    'Name in the greeting, EHLO and Received headers.',
    text,
    () => hostname(),
  ),
  maxMessageSize: key(
    'MAX_MESSAGE_SIZE',
    'bytes',
    '31457280',
    'Largest message accepted (SIZE).',
    integer(1024, 1024 * 1024 * 1024),
    () => 31457280,
  ),
  allowPlaintextAuth: key(
    'SMTP_ALLOW_PLAINTEXT_AUTH',
    'boolean',
    'false',
    'Offer AUTH before TLS (only for trusted networks).',
    bool,
    () => false,
  ),
  logLevel: key(
    'LOG_LEVEL',
    'level',
    'info',
    'Least severe log level written: debug, info, warn, error.',
    oneOf(['debug', 'info', 'warn', 'error'] as const),
    () => 'info' as const,
  ),
} as const;

type Schema = typeof CONFIG_SCHEMA;
export type RelayConfig = { readonly [K in keyof Schema]: ReturnType<Schema[K]['fallback']> };
