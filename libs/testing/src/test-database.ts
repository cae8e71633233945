import pg from 'pg';
import { runMigrations } from '@relay/persistence';

/** Tests use only this server, and only databases whose name contains "test". */
const TEST_SERVER = 'postgres://postgres@127.0.0.1:5432';
/**
 * Each `vitest run` migrates a template of its own (named in the environment by the global setup,
 * which the test workers inherit), so runs in parallel never drop each other's template.
 */
export function templateDatabase(): string {
  return process.env.RELAY_TEST_TEMPLATE ?? 'relay_test_template';
}

function assertTestDatabase(name: string): void {
  if (!name.includes('test') || !/^[a-z0-9_]+$/.test(name)) {
    throw new Error(`Refusing database "${name}": test databases must be named with "test"`);
  }
}

export function testDatabaseUrl(name: string): string {
  assertTestDatabase(name);
  return `${TEST_SERVER}/${name}`;
}

async function withServer<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: `${TEST_SERVER}/postgres` });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function dropDatabase(client: pg.Client, name: string): Promise<void> {
  assertTestDatabase(name);
  await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

/**
 * Creates and migrates the template every test database of this run is copied from (global
 * setup); returns a function that drops it again.
 */
export async function prepareTemplateDatabase(): Promise<() => Promise<void>> {
  const name = `relay_test_template_${process.pid}`;
  process.env.RELAY_TEST_TEMPLATE = name;
  await withServer(async (client) => {
    await dropDatabase(client, name);
    await client.query(`CREATE DATABASE ${name}`);
  });
  await runMigrations(testDatabaseUrl(name));
  return () => withServer((client) => dropDatabase(client, name));
}

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

let created = 0;

/**
 * A fresh, migrated database of its own for one test file, copied from the template (fast, and
 * test files running in parallel never see each other's rows).
 */
export async function createTestDatabase(label = 'db'): Promise<TestDatabase> {
  const safeLabel = label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .slice(0, 20);
  const name = `relay_test_${safeLabel}_${process.pid}_${++created}_${Date.now() % 100000}`;
  assertTestDatabase(name);
  await withServer(async (client) => {
    await dropDatabase(client, name);
    await client.query(`CREATE DATABASE ${name} TEMPLATE ${templateDatabase()}`);
  });
  return {
    name,
    url: testDatabaseUrl(name),
    drop: () => withServer((client) => dropDatabase(client, name)),
  };
}
