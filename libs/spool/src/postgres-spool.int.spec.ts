import { setTimeout as sleep } from 'node:timers/promises';
import { PassThrough, Readable } from 'node:stream';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@relay/testing';
import { PostgresSpool } from './postgres-spool.adapter.js';
import { spoolContract, type SpoolHarness } from './spool.contract.js';
import { SpoolBodyNotFoundError } from './spool.port.js';

async function rowsOf(db: pg.Client): Promise<string[]> {
  const { rows } = await db.query<{ row: string }>(`
    SELECT 'body ' || key || ' ' || size AS row FROM spool_bodies
    UNION ALL
    SELECT 'chunk ' || key || ' ' || seq FROM spool_chunks
    ORDER BY row`);
  return rows.map((r) => r.row);
}

/**
 * A plain client, not a pool: its end() waits for the connection to close, so the forced drop of
 * the database that follows cannot kill it mid-close and raise an error nobody listens to.
 */
async function inspectorOf(db: TestDatabase): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  return client;
}

const harness: SpoolHarness = {
  sweepSlackMs: 0,
  async open(now) {
    const db = await createTestDatabase('spool');
    const spool = await PostgresSpool.connect(db.url, { now });
    const inspector = await inspectorOf(db);
    return {
      spool,
      stored: () => rowsOf(inspector),
      async dispose() {
        await spool.close();
        await inspector.end();
        await db.drop();
      },
    };
  },
};

spoolContract('postgres', harness);

async function waitUntil(condition: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

describe('PostgresSpool', () => {
  const cleanups: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });

  async function database(): Promise<{ db: TestDatabase; inspector: pg.Client }> {
    const db = await createTestDatabase('spool_pg');
    const inspector = await inspectorOf(db);
    cleanups.push(
      () => db.drop(),
      () => inspector.end(),
    );
    return { db, inspector };
  }

  async function connect(db: TestDatabase, now?: () => Date): Promise<PostgresSpool> {
    const spool = await PostgresSpool.connect(db.url, { now });
    cleanups.push(() => spool.close());
    return spool;
  }

  it('holds no transaction open while a body streams in, and shows it only once complete', async () => {
    const { db, inspector } = await database();
    const spool = await connect(db, () => new Date('2025-03-10T08:00:00Z'));
    const body = new PassThrough();
    const write = spool.write('slow-client', body);
    body.write(Buffer.alloc(600_000, 'a'));

    // Chunk 0 commits while the client is still sending; chunk 1 waits to learn if it is the last.
    await waitUntil(
      async () => (await inspector.query(`SELECT 1 FROM spool_chunks WHERE seq = 0`)).rowCount === 1,
      'the first chunk is stored',
    );
    const open = await inspector.query(`
      SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND (xact_start IS NOT NULL OR backend_xid IS NOT NULL)`);
    expect(open.rows).toEqual([]);
    await expect(spool.read('2025-03-10/slow-client')).rejects.toBeInstanceOf(SpoolBodyNotFoundError);

    body.end(Buffer.alloc(10, 'b'));
    expect(await write).toEqual({ key: '2025-03-10/slow-client', size: 600_010 });
    expect(await rowsOf(inspector)).toEqual([
      'body 2025-03-10/slow-client 600010',
      'chunk 2025-03-10/slow-client 0',
      'chunk 2025-03-10/slow-client 1',
      'chunk 2025-03-10/slow-client 2',
    ]);
  });

  it('sweeps a body its writer left unfinished over an hour ago, without counting it', async () => {
    const { db, inspector } = await database();
    const spool = await connect(db, () => new Date('2025-03-10T12:00:00Z'));
    await inspector.query(`
      INSERT INTO spool_bodies (key, size, created_at) VALUES
        ('2025-03-10/died', -1, '2025-03-10T10:59:59Z'),
        ('2025-03-10/in-flight', -1, '2025-03-10T11:30:00Z')`);
    await inspector.query(
      `INSERT INTO spool_chunks (key, seq, data) VALUES ('2025-03-10/died', 0, 'partial')`,
    );

    expect(await spool.removeOlderThan(new Date('2025-03-01T00:00:00Z'))).toBe(0);
    expect(await rowsOf(inspector)).toEqual(['body 2025-03-10/in-flight -1']);
  });

  it('sweeps in batches: more bodies than one statement deletes', async () => {
    const { db, inspector } = await database();
    const spool = await connect(db);
    await inspector.query(`
      INSERT INTO spool_bodies (key, size, created_at)
      SELECT '2025-03-01/old-' || n, 0, '2025-03-01T00:00:00Z' FROM generate_series(1, 1234) AS n`);
    expect(await spool.removeOlderThan(new Date('2025-03-02T00:00:00Z'))).toBe(1234);
    expect(await rowsOf(inspector)).toEqual([]);
  });

  it('fails the read stream, not ends it short, when the body is removed while being read', async () => {
    const { db } = await database();
    const spool = await connect(db);
    const { key } = await spool.write('removed-midway', Readable.from([Buffer.alloc(800_000, 'x')]));
    const stream = await spool.read(key);
    const chunks = stream[Symbol.asyncIterator]();
    expect(((await chunks.next()).value as Buffer).length).toBe(256 * 1024);
    await spool.remove(key);
    // The stream may have fetched one chunk ahead; the one after it is gone.
    const rest = async (): Promise<void> => {
      while (!(await chunks.next()).done);
    };
    await expect(rest()).rejects.toThrow(/removed while being read/);
  });

  it('leaves a pool it was given open on close', async () => {
    const { db } = await database();
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    // The forced drop at cleanup can reach a connection still closing after end() resolved.
    pool.on('error', () => undefined);
    cleanups.push(() => pool.end());
    const spool = new PostgresSpool(pool);
    const { key } = await spool.write('shared-pool', Readable.from([Buffer.from('x')]));
    await spool.close();
    expect((await pool.query(`SELECT size FROM spool_bodies WHERE key = $1`, [key])).rows).toEqual([
      { size: '1' },
    ]);
  });
});
