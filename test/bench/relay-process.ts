import 'reflect-metadata';
import { createWriteStream } from 'node:fs';
import { startTestRelay, type TestRelay } from '../support/test-relay.js';
import {
  BENCH_ACCOUNT,
  BENCH_DATA_ROOT,
  exitFailedToStart,
  RELAY_STOP_TIMEOUT_MS,
  shutdownWhenAsked,
} from './bench-support.js';

/**
 * The relay of `npm run bench`, in a process of its own (its CPU and RSS are then its own): every
 * role, as startTestRelay runs it (a fresh test database copied from RELAY_TEST_TEMPLATE, a
 * temporary data directory, OS-chosen ports on 127.0.0.1, no bounce port of its own).
 *
 *   node test/dist/bench/relay-process.js '{"DELIVERY_SMART_HOST":"127.0.0.1:2626", ...}'
 *
 * The one argument is relay configuration as a JSON object. The process creates an account that
 * may relay from 127.0.0.1 without AUTH and then writes one JSON line to the file descriptor in
 * BENCH_READY_FD (stdout when unset):
 *
 *   {"pid":123,"smtpPort":40001,"adminUrl":"http://127.0.0.1:40002","databaseUrl":"postgres://..."}
 *
 * With BENCH_JOIN set (see joinFrom) it joins another relay process's database and data directory
 * instead, as the second process of a two-process relay (RELAY_ROLES in the settings split the
 * roles), creates no account and leaves the cleanup to that process.
 *
 * With RELAY_TEST_LOGS=1 the relay logs to stdout. It stops, drops its database and removes its
 * data directory on SIGTERM or SIGINT, when stdin is a pipe that closes (the parent is gone), or
 * after BENCH_RELAY_LIFETIME_MS [15 min].
 */

const DROP_TIMEOUT_MS = 10_000;

function overridesFrom(arg: string | undefined): Record<string, string> {
  const parsed: unknown = JSON.parse(arg ?? '{}');
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('expected one JSON object of relay settings');
  }
  return Object.fromEntries(Object.entries(parsed).map(([key, value]) => [key, String(value)]));
}

function writeReady(line: string): void {
  const fd = process.env.BENCH_READY_FD;
  if (fd === undefined) {
    process.stdout.write(line + '\n');
    return;
  }
  const stream = createWriteStream('', { fd: Number(fd) });
  stream.end(line + '\n');
}

/** BENCH_JOIN: `{"databaseUrl":..,"dataDir":..}` of a relay process this one joins. */
function joinFrom(raw: string | undefined): { databaseUrl: string; dataDir: string } | undefined {
  if (raw === undefined || raw === '') return undefined;
  const parsed = JSON.parse(raw) as { databaseUrl?: unknown; dataDir?: unknown };
  if (typeof parsed.databaseUrl !== 'string' || typeof parsed.dataDir !== 'string') {
    throw new Error('BENCH_JOIN needs databaseUrl and dataDir');
  }
  return { databaseUrl: parsed.databaseUrl, dataDir: parsed.dataDir };
}

async function main(): Promise<void> {
  const join = joinFrom(process.env.BENCH_JOIN);
  const dataRoot = process.env[BENCH_DATA_ROOT];
  const relay: TestRelay = await startTestRelay(overridesFrom(process.argv[2]), {
    ...(join ? { join } : {}),
    ...(dataRoot ? { dataRoot } : {}),
  });
  let stopping: Promise<void> | undefined;
  // What relay.stop() does last; done directly when the stop hangs or fails, so that neither the
  // database nor the data directory is left behind (DROP ... WITH (FORCE) ends open sessions).
  const forceCleanup = (): Promise<unknown> => relay.removeOwned().catch(() => undefined);
  const shutdown = (reason: string, failed = false): void => {
    stopping ??= (async () => {
      process.stderr.write(`bench relay: stopping (${reason})\n`);
      const exit = (): never => process.exit(1);
      setTimeout(() => {
        process.stderr.write('bench relay: stop timed out\n');
        setTimeout(exit, DROP_TIMEOUT_MS).unref();
        void forceCleanup().then(exit);
      }, RELAY_STOP_TIMEOUT_MS).unref();
      try {
        await relay.stop();
        process.exit(failed ? 1 : 0);
      } catch (error) {
        process.stderr.write(`bench relay: unclean stop: ${String(error)}\n`);
        setTimeout(exit, DROP_TIMEOUT_MS).unref();
        await forceCleanup();
        exit();
      }
    })();
  };
  shutdownWhenAsked(shutdown);

  try {
    // The process that owns the database (and runs the admin API) creates the account.
    if (!join) {
      const created = await relay.admin('POST', '/v1/accounts', BENCH_ACCOUNT);
      if (created.status !== 201) throw new Error(`POST /v1/accounts: ${created.status}`);
    }
    writeReady(
      JSON.stringify({
        pid: process.pid,
        smtpPort: relay.smtpPort,
        adminUrl: relay.adminUrl,
        databaseUrl: relay.db.url,
        dataDir: relay.dataDir,
      }),
    );
  } catch (error) {
    process.stderr.write(`bench relay: ${String(error)}\n`);
    shutdown('setup failed', true);
  }
}

main().catch(exitFailedToStart);
