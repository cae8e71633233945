import { close, fsync, futimes, open as openCallback, type Dirent } from 'node:fs';
import { mkdir, open, opendir, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { readBlocks } from './body-blocks.js';
import { writeAt } from './positioned-write.js';
import { SharedRun } from './shared-run.js';
import { SEGMENT_SUFFIX, SegmentFile } from './segment-file.js';
import {
  MAX_RECORD_HEADER_OCTETS,
  parseRecordHeader,
  parseSegmentKey,
  recordOctets,
  REMOVED_MARK,
  segmentKeyFor,
  type RecordHeader,
  type SegmentKeyParts,
} from './segment-record.js';
import { alreadySpooledError, dayOf, isDay, parseSpoolKey, spoolKeyFor } from './spool-key.js';
import { SpoolBodyNotFoundError, type Spool, type SpooledBody } from './spool.port.js';

/**
 * Source chunks are gathered into writes of this size: fewer syscalls, bounded memory. A body
 * shorter than this (the common case) goes into a segment by a single write; a longer one gets a
 * file of its own.
 */
const WRITE_BLOCK_SIZE = 256 * 1024;
/** A temporary file untouched this long belongs to a write whose process died. */
const STALE_TEMPORARY_MS = 60 * 60 * 1000;
const BODY_SUFFIX = '.eml';
const EMPTY = Buffer.alloc(0);
/**
 * The sweep keeps a file whose time is this close to the cutoff: the kernel stamps file times from
 * a coarse clock that can run a few milliseconds behind the one a write was timed by.
 */
export const FILE_TIME_SLACK_MS = 1000;
/** The sweep reads a segment's record headers through a window of this size. */
const SCAN_WINDOW_OCTETS = 1024 * 1024;

// Plain descriptors rather than FileHandles on the write path: they cost measurably less CPU per
// body, and a day directory held by a spool that is dropped unclosed is not closed on GC with a
// warning.
const openDescriptor = promisify(openCallback);
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
  private readonly syncs = new SharedRun(() => this.descriptor.then(syncDescriptor));

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
    return this.syncs.request();
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
 * Bodies under `<root>/<yyyy-mm-dd>/`, for a relay on one machine. A body shorter than a write
 * block (256 KB, nearly every message) is a record in a segment file `<segment>.seg` that this
 * process appends to by positioned O_DSYNC writes (segment-file.ts), keyed
 * `<day>/<segment>/<offset>/<messageId>`; a longer one is a file `<messageId>.eml` of its own,
 * written under its final name (O_EXCL, so an existing body is never replaced), fsynced, keyed
 * `<day>/<messageId>`. Either is durable once write() resolves, its name included: a new file's
 * by an fsync of the day directory. Nothing reads a key before write() has resolved (the key
 * reaches readers only through the MessageReceived appended after it), so a body cut short by a
 * crash is never read: it lies unreferenced until the sweep removes it.
 *
 * A segment is freed whole, by the sweep, once its newest body is older than the cutoff (so a
 * body may outlive its cutoff by up to SEGMENT_SPAN_MS, plus FILE_TIME_SLACK_MS); remove() marks
 * one record removed.
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
  /** The segment this process appends small bodies to. */
  private segment: SegmentFile | undefined;

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
    const day = dayOf(writtenAt);
    // Checks the message id before anything is read or made.
    const fileKey = spoolKeyFor(messageId, day);
    const blocks = readBlocks(body, WRITE_BLOCK_SIZE, maxSize);
    const directory = this.acquireDayDirectory(day);
    try {
      await directory.ready();
      // The first block before any file: a body that fails early costs nothing, and one shorter
      // than a block (the common case) is then whole and goes into a segment.
      const first = await blocks.next();
      if (first.done === true || first.value.length < WRITE_BLOCK_SIZE) {
        return await this.appendToSegment(
          directory,
          day,
          messageId,
          first.done === true ? EMPTY : first.value,
          writtenAt,
        );
      }
      const path = join(directory.path, `${messageId}${BODY_SUFFIX}`);
      const size = await this.writeFile(path, first.value, blocks, writtenAt).catch((error: unknown) => {
        // O_EXCL: a body that events may already point at is never replaced.
        if (hasCode(error, 'EEXIST')) throw alreadySpooledError(fileKey);
        throw error;
      });
      await directory.sync();
      return { key: fileKey, size };
    } catch (error) {
      // The directory went from under its descriptor: the next write makes it anew.
      if (hasCode(error, 'ENOENT')) this.forgetDayDirectory(day, directory);
      throw error;
    } finally {
      // Stops reading the source early (on a failed write) without destroying it: it is the caller's.
      await blocks.return();
      directory.release();
      if (directory.idle && day < this.latestDay) this.forgetDayDirectory(day, directory);
    }
  }

  async read(key: string): Promise<Readable> {
    const record = parseSegmentKey(key);
    const parts = record ? undefined : parseSpoolKey(key);
    if (!record && !parts) throw new SpoolBodyNotFoundError(key);
    let file: FileHandle;
    try {
      file = await open(record ? this.segmentPath(record) : this.pathOf(parts!.day, parts!.messageId), 'r');
    } catch (error) {
      throw hasCode(error, 'ENOENT') ? new SpoolBodyNotFoundError(key) : error;
    }
    // An open file outlives its removal (POSIX), so a sweep cannot cut a read short.
    if (!record) return file.createReadStream();
    try {
      const header = await recordAt(file, record);
      if (!header) throw new SpoolBodyNotFoundError(key);
      if (header.bodyLength === 0) {
        await file.close();
        return Readable.from([], { objectMode: false });
      }
      const start = record.offset + header.headerLength;
      return file.createReadStream({ start, end: start + header.bodyLength - 1 });
    } catch (error) {
      await file.close().catch(noop);
      throw error;
    }
  }

  async remove(key: string): Promise<void> {
    const record = parseSegmentKey(key);
    if (record) return this.removeRecord(record);
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
      if (!entry.isDirectory() || !isDay(entry.name) || entry.name > cutoffDay) continue;
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

  private segmentPath(record: SegmentKeyParts): string {
    return join(this.root, record.day, `${record.segment}${SEGMENT_SUFFIX}`);
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
   * Puts a body that fits one block into this process's current segment of `day`, opening a new
   * segment when there is none or it is full, old, or of another day.
   */
  private async appendToSegment(
    directory: DayDirectory,
    day: string,
    messageId: string,
    body: Buffer,
    writtenAt: Date,
  ): Promise<SpooledBody> {
    const at = this.now().getTime();
    let segment = this.segment;
    if (segment === undefined || !segment.accepts(day, at, recordOctets(messageId, body.length))) {
      segment?.retire();
      segment = new SegmentFile(directory.path, day, at, () => directory.sync());
      this.segment = segment;
    }
    const offset = await segment.append(messageId, body, this.stampsWriteTime ? writtenAt : undefined);
    return { key: segmentKeyFor({ day, segment: segment.name, offset, messageId }), size: body.length };
  }

  /**
   * Stores a body of more than one block as a new file at `path` (`first`, then the rest of
   * `blocks`) with its data on disk; returns its size. A failed write removes the file it made.
   */
  private async writeFile(
    path: string,
    first: Buffer,
    blocks: AsyncGenerator<Buffer, void, undefined>,
    writtenAt: Date,
  ): Promise<number> {
    const descriptor = await openDescriptor(path, 'wx');
    let size = 0;
    try {
      for (
        let block: IteratorResult<Buffer, void> = { done: false, value: first };
        !block.done;
        block = await blocks.next()
      ) {
        await writeAt(descriptor, block.value, size);
        size += block.value.length;
      }
      // The sweep reads the write time from the file: set after the last write, which moves it.
      if (this.stampsWriteTime) await stampDescriptor(descriptor, writtenAt, writtenAt);
      await syncDescriptor(descriptor);
    } catch (error) {
      await closeDescriptor(descriptor).catch(noop);
      await unlink(path).catch(noop);
      throw error;
    }
    await closeDescriptor(descriptor);
    return size;
  }

  /** Marks a segment record removed: it reads as not found from then on, and the sweep frees it. */
  private async removeRecord(record: SegmentKeyParts): Promise<void> {
    let file: FileHandle;
    try {
      file = await open(this.segmentPath(record), 'r+');
    } catch (error) {
      if (hasCode(error, 'ENOENT')) return;
      throw error;
    }
    try {
      if (!(await recordAt(file, record))) return;
      await file.write(REMOVED_MARK, 0, REMOVED_MARK.length, record.offset);
      await file.datasync();
    } finally {
      await file.close();
    }
  }

  /**
   * Removes the bodies in `directory` written before `before` (all of them if undefined): files
   * by their write time, segments whole by their newest body's. Returns how many bodies went.
   */
  private async removeBodies(directory: string, before: number | undefined): Promise<number> {
    let removed = 0;
    for await (const entry of entriesOf(directory)) {
      if (!entry.isFile() || !isBodyFile(entry.name)) continue;
      const path = join(directory, entry.name);
      try {
        if (before !== undefined && (await stat(path)).mtimeMs >= before - FILE_TIME_SLACK_MS) continue;
        // Only a cutoff ahead of the clock reaches the segment being written; the next write
        // then starts a new one rather than append to a removed file.
        if (this.segment?.path === path) this.segment.retire();
        const bodies = await bodiesIn(path);
        await unlink(path);
        removed += bodies;
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

/** Whether a file of a day directory holds bodies: a body file or a segment. */
function isBodyFile(name: string): boolean {
  return name.endsWith(BODY_SUFFIX) || name.endsWith(SEGMENT_SUFFIX);
}

/** The live bodies in a body file (one) or a segment (its live records). */
async function bodiesIn(path: string): Promise<number> {
  return path.endsWith(SEGMENT_SUFFIX) ? liveRecordsIn(path) : 1;
}

/** The live record `key` points at in an open segment, or undefined (removed, or not that body's). */
async function recordAt(file: FileHandle, key: SegmentKeyParts): Promise<RecordHeader | undefined> {
  const octets = Buffer.alloc(MAX_RECORD_HEADER_OCTETS);
  const { bytesRead } = await file.read(octets, 0, octets.length, key.offset);
  const header = parseRecordHeader(octets.subarray(0, bytesRead));
  return header?.live === true && header.messageId === key.messageId ? header : undefined;
}

/**
 * The live bodies in a segment, for the sweep's count: its records are walked header by header,
 * read a window at a time (a segment holds thousands), up to the first that is not whole. Writes
 * in flight when a process died can leave zeros or a torn record, and the count stops there: it
 * is a figure for the log, and the segment goes by its time either way.
 */
async function liveRecordsIn(path: string): Promise<number> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const window = Buffer.allocUnsafe(SCAN_WINDOW_OCTETS);
    let windowStart = 0;
    let windowEnd = 0;
    let live = 0;
    for (let offset = 0; offset < size;) {
      if (offset + MAX_RECORD_HEADER_OCTETS > windowEnd && windowEnd < size) {
        const { bytesRead } = await file.read(window, 0, window.length, offset);
        windowStart = offset;
        windowEnd = offset + bytesRead;
      }
      const header = parseRecordHeader(window.subarray(offset - windowStart, windowEnd - windowStart));
      if (!header) break;
      if (header.live) live++;
      offset += header.headerLength + header.bodyLength;
    }
    return live;
  } finally {
    await file.close();
  }
}

/**
 * The live bodies under a local spool's root (body files and segment records), for inspection:
 * tests check with it that a refused message left nothing. Reads every segment's headers.
 */
export async function countSpooledBodies(root: string): Promise<number> {
  let bodies = 0;
  for await (const day of entriesOf(root)) {
    if (!day.isDirectory() || !isDay(day.name)) continue;
    for await (const entry of entriesOf(join(root, day.name))) {
      if (entry.isFile() && isBodyFile(entry.name))
        bodies += await bodiesIn(join(root, day.name, entry.name));
    }
  }
  return bodies;
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
