import { close, constants, fsync, futimes, open as openCallback, write, type Dirent } from 'node:fs';
import { mkdir, open, opendir, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { readBlocks } from './body-blocks.js';
import { alreadySpooledError, dayOf, parseSpoolKey, spoolKeyFor } from './spool-key.js';
import { SpoolBodyNotFoundError, type Spool, type SpooledBody } from './spool.port.js';

/**
 * Source chunks are gathered into writes of this size: fewer syscalls, bounded memory. A body
 * shorter than this (the common case) is stored by a single write.
 */
const WRITE_BLOCK_SIZE = 256 * 1024;
/** A temporary file untouched this long belongs to a write whose process died. */
const STALE_TEMPORARY_MS = 60 * 60 * 1000;
const DAY_DIRECTORY = /^\d{4}-\d{2}-\d{2}$/;
const BODY_SUFFIX = '.eml';

/** O_DSYNC: each write returns with its data on disk, as if an fdatasync followed it. */
const CREATE_SYNCHRONOUS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DSYNC;

// Plain descriptors rather than FileHandles on the write path: they cost measurably less CPU per
// body, and a day directory held by a spool that is dropped unclosed is not closed on GC with a
// warning.
const openDescriptor = promisify(openCallback);
const writeDescriptor = promisify(write);
const stampDescriptor = promisify(futimes);
const syncDescriptor = promisify(fsync);
const closeDescriptor = promisify(close);

export interface LocalDirectorySpoolOptions {
  /**
   * The write time of each body (its key's day, its file time); tests move it. Without it, the
   * system clock gives the key and the file time is the one the write itself sets.
   */
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
  const directory = await openDescriptor(path, 'r');
  try {
    await syncDescriptor(directory);
  } finally {
    await closeDescriptor(directory);
  }
}

async function writeFully(file: number, block: Buffer): Promise<void> {
  for (let offset = 0; offset < block.length;) {
    const { bytesWritten } = await writeDescriptor(file, block, offset, block.length - offset);
    offset += bytesWritten;
  }
}

/**
 * One day directory, created once and then kept open, so that its fsyncs are shared (group
 * commit): an fsync covers every entry made before it started, so a writer waits for the first
 * fsync to start after its file was made, and all the writers that made one meanwhile share it.
 */
class DayDirectory {
  private readonly descriptor: Promise<number>;
  private writers = 0;
  private retired = false;
  private closed = false;
  private syncing: Promise<void> | undefined;
  /** The fsync that starts when `syncing` ends, shared by everyone who asked meanwhile. */
  private next: Promise<void> | undefined;

  constructor(readonly path: string) {
    this.descriptor = createDurableDirectory(path).then(() => openDescriptor(path, 'r'));
  }

  get idle(): boolean {
    return this.writers === 0;
  }

  /** Resolves once the directory exists (durably) and is open; rejects if it cannot be. */
  async ready(): Promise<void> {
    await this.descriptor;
  }

  /** Resolves once an fsync of the directory that started after this call has completed. */
  sync(): Promise<void> {
    // Retired, the path may name a directory made anew since, which this descriptor does not sync.
    if (this.retired) return syncDirectory(this.path);
    if (this.next) return this.next;
    if (!this.syncing) return this.startSync();
    // The fsync in flight may have started before the caller's entry was made.
    this.next = this.syncing.then(noop, noop).then(() => this.startSync());
    return this.next;
  }

  /** Counts a write in progress: the directory stays open until the last one is done. */
  acquire(): void {
    this.writers++;
  }

  release(): void {
    this.writers--;
    this.closeIfIdle();
  }

  /** No write will acquire this directory again: it is closed once the last one is done. */
  retire(): void {
    this.retired = true;
    this.closeIfIdle();
  }

  private startSync(): Promise<void> {
    this.next = undefined;
    const syncing = this.descriptor.then(syncDescriptor);
    this.syncing = syncing;
    const settled = (): void => {
      if (this.syncing === syncing) this.syncing = undefined;
    };
    syncing.then(settled, settled);
    return syncing;
  }

  private closeIfIdle(): void {
    // Once only: a descriptor number closed twice may by then belong to another file.
    if (!this.retired || this.writers > 0 || this.closed) return;
    this.closed = true;
    // Nothing waits on the close of a read-only descriptor, and a failure of it loses no data.
    this.descriptor.then(closeDescriptor).catch(noop);
  }
}

function noop(): void {}

/**
 * Bodies as files `<root>/<yyyy-mm-dd>/<messageId>.eml`, for a relay on one machine. A body is
 * written straight under its final name (O_EXCL, so an existing body is never replaced) and is
 * durable once write() resolves: its data by O_DSYNC or fsync, its name by the day directory's
 * fsync. Nothing reads a key before write() has resolved (the key reaches readers only through
 * the MessageReceived appended after it), so a body cut short by a crash is never read: it lies
 * unreferenced until the sweep removes it with its day. Writing into a temporary name and linking
 * it in cost two more file operations per message, each a trip through libuv's thread pool.
 */
export class LocalDirectorySpool implements Spool {
  /** Where earlier versions wrote bodies before linking them in; the sweep still empties it. */
  private readonly temporaryDirectory: string;
  private readonly now: () => Date;
  /** Only a custom clock needs its time stamped on the file; otherwise the write sets it. */
  private readonly stampsWriteTime: boolean;
  /** The open day directories: the latest day's, and earlier ones while a write still uses them. */
  private readonly days = new Map<string, DayDirectory>();
  private latestDay = '';

  constructor(
    private readonly root: string,
    options: LocalDirectorySpoolOptions = {},
  ) {
    this.temporaryDirectory = join(root, 'tmp');
    this.now = options.now ?? (() => new Date());
    this.stampsWriteTime = options.now !== undefined;
  }

  async write(messageId: string, body: Readable, maxSize?: number): Promise<SpooledBody> {
    const writtenAt = this.now();
    const key = spoolKeyFor(messageId, writtenAt);
    const day = dayOf(writtenAt);
    const directory = this.acquireDayDirectory(day);
    const path = join(directory.path, `${messageId}${BODY_SUFFIX}`);
    const file = { created: false };
    try {
      await directory.ready();
      const size = await this.writeFile(path, body, maxSize, writtenAt, file).catch((error: unknown) => {
        // O_EXCL: a body that events may already point at is never replaced.
        if (hasCode(error, 'EEXIST')) throw alreadySpooledError(key);
        // The directory went from under its descriptor: the next write makes it anew.
        if (hasCode(error, 'ENOENT')) this.forgetDayDirectory(day, directory);
        throw error;
      });
      await directory.sync();
      return { key, size };
    } catch (error) {
      if (file.created) await unlink(path).catch(noop);
      throw error;
    } finally {
      directory.release();
      if (directory.idle && day < this.latestDay) this.forgetDayDirectory(day, directory);
    }
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
        const held = this.days.get(entry.name);
        if (held) this.forgetDayDirectory(entry.name, held);
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

  /**
   * The directory of `day`, created and opened by its first write, with the caller counted as its
   * writer until it calls release. Earlier days are closed once no write uses them: the clock has
   * moved on, save for the writes that began before midnight.
   */
  private acquireDayDirectory(day: string): DayDirectory {
    let directory = this.days.get(day);
    if (!directory) {
      const created = new DayDirectory(join(this.root, day));
      // A failed creation is retried by the next write instead of failing every write after it.
      created.ready().catch(() => this.forgetDayDirectory(day, created));
      this.days.set(day, created);
      directory = created;
    }
    directory.acquire();
    if (day > this.latestDay) {
      this.latestDay = day;
      for (const [other, earlier] of this.days) {
        if (other < day && earlier.idle) this.forgetDayDirectory(other, earlier);
      }
    }
    return directory;
  }

  /**
   * Takes `directory` out of use: a later write of its day opens the directory anew (and makes it
   * again, should the sweep have removed it).
   */
  private forgetDayDirectory(day: string, directory: DayDirectory): void {
    if (this.days.get(day) === directory) this.days.delete(day);
    directory.retire();
  }

  /**
   * Stores `body` as a new file at `path` with its data on disk; returns its size. `file.created`
   * says whether the file was made (and so is this write's to remove if it fails).
   */
  private async writeFile(
    path: string,
    body: Readable,
    maxSize: number | undefined,
    writtenAt: Date,
    file: { created: boolean },
  ): Promise<number> {
    const blocks = readBlocks(body, WRITE_BLOCK_SIZE, maxSize);
    try {
      // The first block before the file: a body that fails early costs no file, and one shorter
      // than a block (the common case) is then whole, so a single O_DSYNC write stores it and
      // makes it durable without an fsync call. A custom clock's time is stamped after the
      // write, so that case takes the fsync.
      const first = await blocks.next();
      const single = !first.done && first.value.length < WRITE_BLOCK_SIZE && !this.stampsWriteTime;
      const descriptor = await openDescriptor(path, single ? CREATE_SYNCHRONOUS : 'wx');
      file.created = true;
      try {
        let size = 0;
        for (let block = first; !block.done; block = await blocks.next()) {
          await writeFully(descriptor, block.value);
          size += block.value.length;
        }
        // The sweep reads the write time from the file: set after the last write, which moves it.
        if (this.stampsWriteTime) await stampDescriptor(descriptor, writtenAt, writtenAt);
        if (!single) await syncDescriptor(descriptor);
        return size;
      } finally {
        await closeDescriptor(descriptor);
      }
    } finally {
      // Stops reading the source early (on a failed write) without destroying it: it is the caller's.
      await blocks.return();
    }
  }

  /** Removes the bodies in `directory` written before `before` (all of them if undefined). */
  private async removeBodies(directory: string, before: number | undefined): Promise<number> {
    let removed = 0;
    for await (const entry of entriesOf(directory)) {
      if (!entry.isFile() || !entry.name.endsWith(BODY_SUFFIX)) continue;
      const path = join(directory, entry.name);
      try {
        // Rounded: a stamped file time went in as whole milliseconds and comes back as a float.
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
