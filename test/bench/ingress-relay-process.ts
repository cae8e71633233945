import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, loadConfig, type RelayConfig } from '@relay/config';
import { startRelay, type RunningRelay } from '@relay/relay';
import { createTestDatabase, prepareTemplateDatabase, type TestDatabase } from '@relay/testing';
import { ADMIN_TOKEN, localRelayEnv } from '../support/test-relay.js';
import {
  BENCH_ACCOUNT,
  BENCH_DATA_ROOT,
  exitFailedToStart,
  RELAY_STOP_TIMEOUT_MS,
  shutdownWhenAsked,
} from './bench-support.js';

/**
 * The relay of `npm run bench:ingress`, in a process of its own: the load generator's CPU is then
 * not counted as the relay's, and the relay's RSS can be read from /proc/<pid>/status.
 *
 *   node test/dist/bench/ingress-relay-process.js [KEY=VALUE ...]
 *
 * Each KEY=VALUE is relay configuration (KAFKA_BROKERS, KAFKA_TOPIC, LOG_LEVEL, ...) on top of what
 * the e2e tests use: a fresh test database (from RELAY_TEST_TEMPLATE, prepared here when unset), a
 * temporary data directory and OS-chosen ports on 127.0.0.1. It creates an account that may relay
 * from 127.0.0.1 without AUTH, then prints one JSON line to stdout:
 *
 *   {"pid":123,"smtpPort":40001,"adminUrl":"http://127.0.0.1:40002","accountId":"..."}
 *
 * Structured logs go to stderr. It stops, drops its database and removes its data directory on
 * SIGTERM or SIGINT, when stdin is a pipe that closes (the parent is gone), or after
 * BENCH_RELAY_LIFETIME_MS [15 min].
 */

interface Started {
  readonly relay: RunningRelay;
  readonly db: TestDatabase;
  readonly dataDir: string;
  /** False when the bench gave a data root (BENCH_DATA_ROOT): the bench removes it at its end. */
  readonly ownsDataDir: boolean;
  readonly dropTemplate: (() => Promise<void>) | undefined;
}

function configOverrides(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const arg of args) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/s.exec(arg);
    if (!match?.[1] || match[2] === undefined) throw new Error(`expected KEY=VALUE, got "${arg}"`);
    out[match[1]] = match[2];
  }
  return out;
}

async function createBenchAccount(adminUrl: string): Promise<string> {
  const response = await fetch(`${adminUrl}/v1/accounts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(BENCH_ACCOUNT),
    signal: AbortSignal.timeout(30_000),
  });
  const body = (await response.json()) as { id?: unknown };
  if (response.status !== 201 || typeof body.id !== 'string') {
    throw new Error(`POST /v1/accounts: ${response.status} ${JSON.stringify(body)}`);
  }
  return body.id;
}

async function start(overrides: Record<string, string>): Promise<Started> {
  const dropTemplate = process.env.RELAY_TEST_TEMPLATE ? undefined : await prepareTemplateDatabase();
  const db = await createTestDatabase('bench_ingress');
  const dataRoot = process.env[BENCH_DATA_ROOT];
  const dataDir = await mkdtemp(join(dataRoot ?? tmpdir(), 'relay-bench-'));
  try {
    const config: RelayConfig = loadConfig({
      ...localRelayEnv(db.url, dataDir),
      ADMIN_TOKEN,
      RELAY_HOSTNAME: 'relay.bench',
      ...overrides,
    });
    // The product's logger at the product's default level (info: one line per accepted message),
    // so that the cost of logging is part of what is measured.
    const logger = createLogger(config.logLevel, { service: 'relay' }, (line) =>
      process.stderr.write(line + '\n'),
    );
    const relay = await startRelay(config, logger);
    return { relay, db, dataDir, ownsDataDir: dataRoot === undefined, dropTemplate };
  } catch (error) {
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
    await dropTemplate?.();
    throw error;
  }
}

async function stop(started: Started): Promise<void> {
  await started.relay.stop();
  await started.db.drop();
  if (started.ownsDataDir) await rm(started.dataDir, { recursive: true, force: true });
  await started.dropTemplate?.();
}

async function main(): Promise<void> {
  const overrides = configOverrides(process.argv.slice(2));
  const started = await start(overrides);
  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string, failed = false): void => {
    stopping ??= (async () => {
      process.stderr.write(JSON.stringify({ level: 'info', msg: 'bench relay stopping', reason }) + '\n');
      setTimeout(() => {
        process.stderr.write('bench relay: stop timed out\n');
        process.exit(1);
      }, RELAY_STOP_TIMEOUT_MS).unref();
      try {
        await stop(started);
        process.exit(failed ? 1 : 0);
      } catch (error) {
        process.stderr.write(`bench relay: unclean stop: ${String(error)}\n`);
        process.exit(1);
      }
    })();
  };
  shutdownWhenAsked(shutdown);

  try {
    const adminUrl = started.relay.adminUrl();
    const smtpPort = started.relay.smtpListeners().find((l) => !l.implicitTls)?.port;
    if (!adminUrl || !smtpPort) throw new Error('the relay runs no admin API or no plain SMTP port');
    const accountId = await createBenchAccount(adminUrl);
    process.stdout.write(JSON.stringify({ pid: process.pid, smtpPort, adminUrl, accountId }) + '\n');
  } catch (error) {
    process.stderr.write(`bench relay: ${String(error)}\n`);
    shutdown('setup failed', true);
  }
}

main().catch(exitFailedToStart);
