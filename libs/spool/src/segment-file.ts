import { randomBytes } from 'node:crypto';
import { close, constants, fstat, fsync, futimes, open } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeAt } from './positioned-write.js';
import { recordHeader } from './segment-record.js';
import { SharedRun } from './shared-run.js';

const openDescriptor = promisify(open);
const stampDescriptor = promisify(futimes);
const syncDescriptor = promisify(fsync);
const closeDescriptor = promisify(close);
const statDescriptor = promisify(fstat);

/** O_DSYNC: each write returns with its data (and the file size that reaches it) on disk. */
const CREATE_SYNCHRONOUS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DSYNC;

export const SEGMENT_SUFFIX = '.seg';
/** A segment takes no more records once it holds this much. */
export const MAX_SEGMENT_OCTETS = 64 * 1024 * 1024;
/**
 * Nor once it is this old. The sweep frees whole segments, so this bounds how long past its
 * retention a body can stay; and since no process appends to a segment older than this, a sweep
 * whose cutoff is far older (the retention is at least 72 hours) never removes one still written.
 */
export const SEGMENT_SPAN_MS = 10 * 60 * 1000;

/** A fresh segment name: time first (names sort by age), then randomness (several processes). */
function segmentName(at: number): string {
  return `${at.toString(36)}-${randomBytes(6).toString('hex')}`;
}

/**
 * One segment file being appended to by this process: small bodies go into it side by side,
 * each at an offset reserved in memory, by a single positioned O_DSYNC write. One file per
 * segment instead of one per body saves the open, close and directory fsync of every message
 * (and millions of inodes a day at a steady 1 000 messages/s).
 */
export class SegmentFile {
  readonly name: string;
  readonly path: string;
  private readonly descriptor: Promise<number>;
  private size = 0;
  private writing = 0;
  private retired = false;
  private closed = false;
  private stampedMs = 0;
  private readonly expiry: NodeJS.Timeout;
  /**
   * A write into a segment whose directory was deleted from under the process (by hand, or by a
   * sweep elsewhere with a wrong cutoff) would land in an unlinked file and be lost once
   * answered; so a write resolves only after a check, started after it was written, finds the file
   * still linked. One check serves every write that finished meanwhile.
   */
  private readonly linkChecks = new SharedRun(async () => {
    const { nlink } = await statDescriptor(await this.descriptor);
    if (nlink === 0) {
      throw Object.assign(new Error(`spool segment ${this.path} was removed while in use`), {
        code: 'ENOENT',
      });
    }
  });

  /**
   * `syncEntry` makes the new file's directory entry durable (an fsync of its directory); no
   * write into the segment resolves before it has.
   */
  constructor(
    directory: string,
    readonly day: string,
    private readonly openedAt: number,
    syncEntry: () => Promise<void>,
  ) {
    this.name = segmentName(openedAt);
    this.path = join(directory, `${this.name}${SEGMENT_SUFFIX}`);
    this.descriptor = openDescriptor(this.path, CREATE_SYNCHRONOUS).then(async (descriptor) => {
      await syncEntry().catch(async (error: unknown) => {
        await closeDescriptor(descriptor).catch(() => undefined);
        throw error;
      });
      return descriptor;
    });
    // A failed open fails the writes waiting on it; the segment is then not used again.
    this.descriptor.catch(() => this.retire());
    // An idle process closes its segment too, once no write may go into it.
    this.expiry = setTimeout(() => this.retire(), SEGMENT_SPAN_MS);
    this.expiry.unref();
  }

  /**
   * Whether a record of `recordOctets` of `day` may go into this segment at `at`, the time of the
   * append itself (not when its DATA began, which may precede the segment).
   */
  accepts(day: string, at: number, recordOctets: number): boolean {
    return (
      !this.retired &&
      day === this.day &&
      at >= this.openedAt &&
      at - this.openedAt <= SEGMENT_SPAN_MS &&
      (this.size === 0 || this.size + recordOctets <= MAX_SEGMENT_OCTETS)
    );
  }

  /**
   * Appends `body` as a record and resolves with its offset once it is on disk. `stamp` (a
   * custom clock's write time) is set as the file time, which the sweep reads. A failed write
   * retires the segment: no record is placed after one that may be torn, save those in flight.
   */
  async append(messageId: string, body: Buffer, stamp?: Date): Promise<number> {
    const record = Buffer.concat([recordHeader(messageId, body.length), body]);
    const offset = this.size;
    this.size += record.length;
    this.writing++;
    try {
      const descriptor = await this.descriptor;
      await writeAt(descriptor, record, offset);
      await this.linkChecks.request();
      if (stamp !== undefined && stamp.getTime() > this.stampedMs) {
        this.stampedMs = stamp.getTime();
        await stampDescriptor(descriptor, stamp, stamp);
        await syncDescriptor(descriptor);
      }
      return offset;
    } catch (error) {
      this.retire();
      throw error;
    } finally {
      this.writing--;
      this.closeIfDone();
    }
  }

  /** No record goes in any more; the file is closed once the writes in flight are done. */
  retire(): void {
    this.retired = true;
    clearTimeout(this.expiry);
    this.closeIfDone();
  }

  private closeIfDone(): void {
    // Once only: a descriptor number closed twice may by then belong to another file.
    if (!this.retired || this.writing > 0 || this.closed) return;
    this.closed = true;
    // Every write into it has resolved (each on disk by O_DSYNC): nothing waits on the close.
    this.descriptor.then(closeDescriptor).catch(() => undefined);
  }
}
