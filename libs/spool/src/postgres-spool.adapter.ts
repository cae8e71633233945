import { Readable } from 'node:stream';
import pg from 'pg';
import { readBlocks } from './body-blocks.js';
import { alreadySpooledError, dayOf, parseSpoolKey, spoolKeyFor } from './spool-key.js';
import { SpoolBodyNotFoundError, type Spool, type SpooledBody } from './spool.port.js';

/** Octets per spool_chunks row: memory per write and per read is about one or two of these. */
const CHUNK_SIZE = 256 * 1024;
/** `size` of a body whose chunks are still arriving: read treats it as absent, the sweep as stale. */
const WRITING = -1;
/** A body still being written after this long belongs to a writer that died. */
const STALE_WRITE_MS = 60 * 60 * 1000;
/** Bodies per sweep statement, so the sweep never runs as one long transaction. */
const SWEEP_BATCH = 500;
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * The first chunk creates the body row in the same statement. When that chunk is the whole body
 * (most transactional mail) `$2` is the final size and the write is this one statement; else it
 * is WRITING. An empty body has no chunk at all.
 */
const INSERT_FIRST_CHUNK_SQL = `
  WITH body AS (
    INSERT INTO spool_bodies (key, size, created_at) VALUES ($1, $2, $3) RETURNING key
  )
  INSERT INTO spool_chunks (key, seq, data) SELECT key, 0, $4::bytea FROM body WHERE $4::bytea IS NOT NULL`;

const INSERT_CHUNK_SQL = `INSERT INTO spool_chunks (key, seq, data) VALUES ($1, $2, $3)`;

/** The last chunk and the final size commit together: from then on the body is readable. */
const INSERT_LAST_CHUNK_SQL = `
  WITH chunk AS (
    INSERT INTO spool_chunks (key, seq, data) VALUES ($1, $2, $3)
  )
  UPDATE spool_bodies SET size = $4 WHERE key = $1 AND size = ${WRITING}`;

const SIZE_SQL = `SELECT size::text AS size FROM spool_bodies WHERE key = $1 AND size >= 0`;
const READ_CHUNK_SQL = `SELECT data FROM spool_chunks WHERE key = $1 AND seq = $2`;
const DELETE_SQL = `DELETE FROM spool_bodies WHERE key = $1`;

/** Chunks go with their body (ON DELETE CASCADE). */
const SWEEP_SQL = `
  DELETE FROM spool_bodies WHERE key IN (
    SELECT key FROM spool_bodies
    WHERE created_at < $1 OR (size = ${WRITING} AND created_at < $2)
    LIMIT ${SWEEP_BATCH}
  )
  RETURNING size::text AS size`;

function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '23505';
}

export interface PostgresSpoolOptions {
  /** The write time stamped on each body (its key's day, created_at); tests move it. */
  readonly now?: () => Date;
}

/**
 * Bodies as 256 KiB rows of spool_chunks under a spool_bodies row, for ingress and workers on
 * different machines.
 *
 * A write is not one transaction: each chunk commits on its own and the body stays invisible
 * (size WRITING) until its last chunk and size commit together. A transaction spanning the DATA
 * phase would pin a pooled connection per upload for as long as the client takes to send, and
 * its transaction id would hold back every Postgres event-log reader on the server (they read
 * only below the oldest running transaction) for that long. Each commit fsyncs the WAL, so every
 * chunk is durable once its statement returns and the body is durable when write resolves.
 */
export class PostgresSpool implements Spool {
  private readonly pool: pg.Pool;
  /** close() ends only a pool this adapter opened; a pool passed in belongs to its owner. */
  private readonly ownsPool: boolean;
  private readonly now: () => Date;

  constructor(poolOrUrl: pg.Pool | string, options: PostgresSpoolOptions = {}) {
    if (typeof poolOrUrl === 'string') {
      this.pool = new pg.Pool({
        connectionString: poolOrUrl,
        application_name: 'relay-spool',
        keepAlive: true,
        connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      });
      // An idle connection that dies is replaced on the next checkout; queries report their own errors.
      this.pool.on('error', () => undefined);
      this.ownsPool = true;
    } else {
      this.pool = poolOrUrl;
      this.ownsPool = false;
    }
    this.now = options.now ?? (() => new Date());
  }

  /** Opens a pool of its own and checks the server answers; the tables come from the migrations. */
  static async connect(url: string, options: PostgresSpoolOptions = {}): Promise<PostgresSpool> {
    const spool = new PostgresSpool(url, options);
    try {
      await spool.pool.query('SELECT 1');
    } catch (error) {
      await spool.close().catch(() => undefined);
      throw error;
    }
    return spool;
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end();
  }

  async write(messageId: string, body: Readable, maxSize?: number): Promise<SpooledBody> {
    const writtenAt = this.now();
    const key = spoolKeyFor(messageId, dayOf(writtenAt));
    let size = 0;
    let stored = 0;
    // One block is held back until the next arrives or the body ends: only then is it known to be
    // the last, which commits with the size.
    let held: Buffer | undefined;
    try {
      for await (const block of readBlocks(body, CHUNK_SIZE, maxSize)) {
        if (held) {
          await this.storeChunk(key, stored, held, writtenAt);
          stored++;
        }
        held = block;
        size += block.length;
      }
      if (stored === 0) {
        await this.pool.query(INSERT_FIRST_CHUNK_SQL, [key, size, writtenAt, held ?? null]);
      } else {
        const finished = await this.pool.query(INSERT_LAST_CHUNK_SQL, [key, stored, held, size]);
        if (finished.rowCount !== 1) throw new Error(`spooled body "${key}" was removed while being written`);
      }
    } catch (error) {
      // Before any commit there is nothing to undo, and the key may be another write's.
      if (stored === 0) throw isUniqueViolation(error) ? alreadySpooledError(key) : error;
      // Should this fail too, the row stays WRITING, invisible, until the sweep finds it stale.
      await this.pool.query(DELETE_SQL, [key]).catch(() => undefined);
      throw error;
    }
    return { key, size };
  }

  async read(key: string): Promise<Readable> {
    if (!parseSpoolKey(key)) throw new SpoolBodyNotFoundError(key);
    const { rows } = await this.pool.query<{ size: string }>(SIZE_SQL, [key]);
    const row = rows[0];
    if (!row) throw new SpoolBodyNotFoundError(key);
    return Readable.from(this.chunksOf(key, Number(row.size)), { objectMode: false });
  }

  async remove(key: string): Promise<void> {
    if (!parseSpoolKey(key)) return;
    await this.pool.query(DELETE_SQL, [key]);
  }

  /** Also sweeps bodies left WRITING by a writer that died; those are not counted. */
  async removeOlderThan(cutoff: Date): Promise<number> {
    const staleBefore = new Date(this.now().getTime() - STALE_WRITE_MS);
    let removed = 0;
    for (;;) {
      const { rows } = await this.pool.query<{ size: string }>(SWEEP_SQL, [cutoff, staleBefore]);
      removed += rows.filter((row) => Number(row.size) !== WRITING).length;
      if (rows.length < SWEEP_BATCH) return removed;
    }
  }

  private async storeChunk(key: string, seq: number, data: Buffer, writtenAt: Date): Promise<void> {
    if (seq === 0) await this.pool.query(INSERT_FIRST_CHUNK_SQL, [key, WRITING, writtenAt, data]);
    else await this.pool.query(INSERT_CHUNK_SQL, [key, seq, data]);
  }

  /**
   * One chunk per query, by primary key, pulled only as the consumer reads: memory holds about a
   * chunk, and no connection is pinned between chunks (a delivery streams to a slow MX for minutes).
   * The stored size tells the end, and a chunk gone midway (a remove or sweep) fails the stream
   * instead of ending it short.
   */
  private async *chunksOf(key: string, size: number): AsyncGenerator<Buffer> {
    let read = 0;
    for (let seq = 0; read < size; seq++) {
      const { rows } = await this.pool.query<{ data: Buffer }>(READ_CHUNK_SQL, [key, seq]);
      const data = rows[0]?.data;
      if (!data) throw new Error(`spooled body "${key}" was removed while being read`);
      read += data.length;
      yield data;
    }
    if (read !== size) throw new Error(`spooled body "${key}" has ${read} octets stored, not ${size}`);
  }
}
