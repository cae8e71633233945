import { randomUUID } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { link, mkdir, open, opendir, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { readBlocks } from './body-blocks.js';
import { alreadySpooledError, dayOf, parseSpoolKey, spoolKeyFor } from './spool-key.js';
import { SpoolBodyNotFoundError, type Spool, type SpooledBody } from './spool.port.js';

/** Source chunks are gathered into writes of this size: fewer syscalls, bounded memory. */
const WRITE_BLOCK_SIZE = 64 * 1024;
/** A temporary file untouched this long belongs to a write whose process died. */
const STALE_TEMPORARY_MS = 60 * 60 * 1000;
const DAY_DIRECTORY = /^\d{4}-\d{2}-\d{2}$/;
const BODY_SUFFIX = '.eml';

export interface LocalDirectorySpoolOptions {
  /** The write time stamped on each body (its key's day, its file time); tests move it. */
  readonly now?: () => Date;
}

function hasCode(error: unknown, ...codes: string[]): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && codes.includes(code);
}

/** A directory's entries, or none when it does not exist (nothing was written yet). */
async function* entriesOf(path: string): AsyncGenerator<Dirent> {
  let directory;
  try {
    directory = await opendir(path);
  } catch (error) {
    if (hasCode(error, 'ENOENT')) return;
    throw error;
  }
  // Streamed, not readdir: a busy day can hold far more names than are worth loading at once.
  yield* directory;
}

/** A new or renamed entry is durable only once the directory holding it is fsynced (POSIX). */
async function syncDirectory(path: string): Promise<void> {
  const directory = await open(path, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

async function writeFully(file: FileHandle, block: Buffer): Promise<void> {
  for (let offset = 0; offset < block.length;) {
    const { bytesWritten } = await file.write(block, offset, block.length - offset);
    offset += bytesWritten;
  }
}

/**
 * Bodies as files `<root>/<yyyy-mm-dd>/<messageId>.eml`, for a relay on one machine. A body is
 * streamed into `<root>/tmp` and appears under its key only once complete and fsynced, so a
 * reader never sees a partial body and a crash leaves at most a temporary file for the sweep.
 */
export class LocalDirectorySpool implements Spool {
  private readonly temporaryDirectory: string;
  private readonly now: () => Date;
  /** One creation per directory, so every writer waits for the fsync that makes it durable. */
  private readonly directories = new Map<string, Promise<void>>();

  constructor(
    private readonly root: string,
    options: LocalDirectorySpoolOptions = {},
  ) {
    this.temporaryDirectory = join(root, 'tmp');
    this.now = options.now ?? (() => new Date());
  }

  async write(messageId: string, body: Readable, maxSize?: number): Promise<SpooledBody> {
    const writtenAt = this.now();
    const key = spoolKeyFor(messageId, writtenAt);
    const path = this.pathOf(dayOf(writtenAt), messageId);
    await this.ensureDirectory(this.temporaryDirectory);
    const temporaryPath = join(this.temporaryDirectory, `${messageId}.${randomUUID()}`);

    let size = 0;
    let linked = false;
    try {
      const file = await open(temporaryPath, 'wx');
      try {
        for await (const block of readBlocks(body, WRITE_BLOCK_SIZE, maxSize)) {
          await writeFully(file, block);
          size += block.length;
        }
        // The sweep reads the write time from the file: set after the last write, which moves it.
        await file.utimes(writtenAt, writtenAt);
        await file.sync();
      } finally {
        await file.close();
      }
      await this.ensureDirectory(dirname(path));
      // link, not rename: it fails instead of replacing a body that events may already point at.
      await link(temporaryPath, path).catch((error: unknown) => {
        throw hasCode(error, 'EEXIST') ? alreadySpooledError(key) : error;
      });
      linked = true;
      await syncDirectory(dirname(path));
    } catch (error) {
      if (linked) await unlink(path).catch(() => undefined);
      await unlink(temporaryPath).catch(() => undefined);
      throw error;
    }
    // The body is durable under its key; a temporary name left by a crash here is swept later.
    await unlink(temporaryPath).catch(() => undefined);
    return { key, size };
  }

  async read(key: string): Promise<Readable> {
    const parts = parseSpoolKey(key);
    if (!parts) throw new SpoolBodyNotFoundError(key);
    let file: FileHandle;
    try {
      file = await open(this.pathOf(parts.day, parts.messageId), 'r');
    } catch (error) {
      throw hasCode(error, 'ENOENT') ? new SpoolBodyNotFoundError(key) : error;
    }
    // An open file outlives its removal (POSIX), so a sweep cannot cut a read short.
    return file.createReadStream();
  }

  async remove(key: string): Promise<void> {
    const parts = parseSpoolKey(key);
    if (!parts) return;
    await unlink(this.pathOf(parts.day, parts.messageId)).catch((error: unknown) => {
      if (!hasCode(error, 'ENOENT')) throw error;
    });
  }

  /**
   * Day directories before the cutoff's day go whole; in the cutoff's day, files whose write time
   * is before the cutoff. Later days are not opened. Also sweeps stale temporary files.
   */
  async removeOlderThan(cutoff: Date): Promise<number> {
    const cutoffDay = dayOf(cutoff);
    let removed = 0;
    for await (const entry of entriesOf(this.root)) {
      if (!entry.isDirectory() || !DAY_DIRECTORY.test(entry.name) || entry.name > cutoffDay) continue;
      const directory = join(this.root, entry.name);
      const wholeDay = entry.name < cutoffDay;
      removed += await this.removeBodies(directory, wholeDay ? undefined : cutoff.getTime());
      if (wholeDay) {
        this.directories.delete(directory);
        await rmdir(directory).catch((error: unknown) => {
          // A body written into the day meanwhile (a clock set back) keeps its directory.
          if (!hasCode(error, 'ENOENT', 'ENOTEMPTY')) throw error;
        });
      }
    }
    await this.removeStaleTemporaries();
    return removed;
  }

  private pathOf(day: string, messageId: string): string {
    return join(this.root, day, `${messageId}${BODY_SUFFIX}`);
  }

  /** Removes the bodies in `directory` written before `before` (all of them if undefined). */
  private async removeBodies(directory: string, before: number | undefined): Promise<number> {
    let removed = 0;
    for await (const entry of entriesOf(directory)) {
      if (!entry.isFile() || !entry.name.endsWith(BODY_SUFFIX)) continue;
      const path = join(directory, entry.name);
      try {
        // Rounded: the file time went in as whole milliseconds and comes back as a float.
        if (before !== undefined && Math.round((await stat(path)).mtimeMs) >= before) continue;
        await unlink(path);
        removed++;
      } catch (error) {
        if (!hasCode(error, 'ENOENT')) throw error;
      }
    }
    return removed;
  }

  private async removeStaleTemporaries(): Promise<void> {
    const staleBefore = this.now().getTime() - STALE_TEMPORARY_MS;
    for await (const entry of entriesOf(this.temporaryDirectory)) {
      const path = join(this.temporaryDirectory, entry.name);
      try {
        if ((await stat(path)).mtimeMs < staleBefore) await unlink(path);
      } catch (error) {
        if (!hasCode(error, 'ENOENT')) throw error;
      }
    }
  }

  private ensureDirectory(path: string): Promise<void> {
    let created = this.directories.get(path);
    if (!created) {
      created = createDurableDirectory(path);
      this.directories.set(path, created);
      // A failed creation is retried by the next write instead of failing every write after it.
      void created.catch(() => this.directories.delete(path));
    }
    return created;
  }
}

/**
 * mkdir -p, then fsyncs the parent of each directory it made, so a body linked into it survives a
 * crash. The parent of `path` is synced even when `path` existed: another process may have just
 * made it without having synced yet.
 */
async function createDurableDirectory(path: string): Promise<void> {
  const first = await mkdir(path, { recursive: true });
  for (let directory = path; ; directory = dirname(directory)) {
    await syncDirectory(dirname(directory));
    if (first === undefined || directory === first) return;
  }
}
