import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  countSpooledBodies,
  FILE_TIME_SLACK_MS,
  LocalDirectorySpool,
} from './local-directory-spool.adapter.js';
import { SEGMENT_SPAN_MS } from './segment-file.js';
import { spoolContract, type SpoolHarness } from './spool.contract.js';
import { SpoolBodyNotFoundError, type Spool } from './spool.port.js';

/** Every file under `root`, relative to it (directories themselves are not stored data). */
async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .sort();
}

/** The segment a segment key names. */
function segmentOf(key: string): string | undefined {
  return key.split('/')[1];
}

async function contentOf(spool: Spool, key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await spool.read(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

async function spoolDirectory(): Promise<{ root: string; dispose: () => Promise<void> }> {
  const parent = await mkdtemp(join(tmpdir(), 'relay-spool-test-'));
  return { root: join(parent, 'spool'), dispose: () => rm(parent, { recursive: true, force: true }) };
}

const harness: SpoolHarness = {
  sweepSlackMs: SEGMENT_SPAN_MS + FILE_TIME_SLACK_MS,
  async open(now) {
    const { root, dispose } = await spoolDirectory();
    return { spool: new LocalDirectorySpool(root, { now }), stored: () => filesUnder(root), dispose };
  },
};

spoolContract('local directory', harness);

describe('LocalDirectorySpool', () => {
  const disposals: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const dispose of disposals.splice(0)) await dispose();
  });

  async function directory(): Promise<string> {
    const { root, dispose } = await spoolDirectory();
    disposals.push(dispose);
    return root;
  }

  it('puts a small body into a segment of its day, and a longer one into <day>/<messageId>.eml', async () => {
    const root = await directory();
    const spool = new LocalDirectorySpool(root, { now: () => new Date('2025-03-10T08:00:00Z') });
    const small = await spool.write('small', Readable.from([Buffer.from('Subject: x\r\n\r\nbody\r\n')]));
    const next = await spool.write('next', Readable.from([Buffer.from('second')]));
    const large = Buffer.alloc(256 * 1024, 'a');
    const { key } = await spool.write('large', Readable.from([large]));
    // Durability itself needs a power cut to test: a segment is created and its directory
    // fsynced before its first record is written, each record by an O_DSYNC write; a large body
    // is fsynced and then its day directory.
    expect(small.key).toMatch(/^2025-03-10\/[a-z0-9]+-[a-f0-9]+\/0\/small$/);
    const segment = segmentOf(small.key);
    // The second record starts where the first ends: a 9-octet prefix, the id, the body.
    const firstRecord = 9 + 'small'.length + Buffer.byteLength('Subject: x\r\n\r\nbody\r\n');
    expect(next.key).toBe(`2025-03-10/${segment}/${firstRecord}/next`);
    expect(key).toBe('2025-03-10/large');
    expect(await filesUnder(root)).toEqual(['2025-03-10/large.eml', `2025-03-10/${segment}.seg`]);
    expect((await readFile(join(root, '2025-03-10', 'large.eml'))).equals(large)).toBe(true);
    expect(await contentOf(spool, small.key)).toBe('Subject: x\r\n\r\nbody\r\n');
    expect(await contentOf(spool, next.key)).toBe('second');
  });

  it('refuses a key that does not point at the record of its message id', async () => {
    const root = await directory();
    const spool = new LocalDirectorySpool(root);
    const { key } = await spool.write('real', Readable.from([Buffer.from('body')]));
    const [day, segment] = key.split('/');
    for (const forged of [
      `${day}/${segment}/0/other`,
      `${day}/${segment}/1/real`,
      `${day}/${segment}/900/real`,
    ]) {
      await expect(spool.read(forged)).rejects.toBeInstanceOf(SpoolBodyNotFoundError);
      await spool.remove(forged);
    }
    expect(await contentOf(spool, key)).toBe('body');
  });

  it('rejects a second write of a large body under the same message id, keeping the first', async () => {
    const root = await directory();
    const spool = new LocalDirectorySpool(root);
    const first = Buffer.alloc(300 * 1024, 'f');
    const { key } = await spool.write('twice-large', Readable.from([first]));
    await expect(spool.write('twice-large', Readable.from([Buffer.alloc(300 * 1024, 's')]))).rejects.toThrow(
      /already spooled/,
    );
    expect((await contentOf(spool, key)) === first.toString()).toBe(true);
  });

  it('starts a new segment once the current one is older than its span', async () => {
    const root = await directory();
    let now = new Date('2025-03-10T08:00:00Z');
    const spool = new LocalDirectorySpool(root, { now: () => now });
    const segmentWritten = async (messageId: string): Promise<string | undefined> =>
      segmentOf((await spool.write(messageId, Readable.from([Buffer.from(messageId)]))).key);
    const first = await segmentWritten('a');
    now = new Date(now.getTime() + SEGMENT_SPAN_MS);
    expect(await segmentWritten('b')).toBe(first);
    now = new Date(now.getTime() + 1);
    expect(await segmentWritten('c')).not.toBe(first);
  });

  it('keeps one segment for a write whose DATA began before the segment was opened', async () => {
    const root = await directory();
    let now = new Date('2025-03-10T08:00:00Z');
    const spool = new LocalDirectorySpool(root, { now: () => now });
    const slow = new PassThrough();
    const slowWrite = spool.write('slow', slow);
    now = new Date('2025-03-10T08:00:01Z');
    const quick = await spool.write('quick', Readable.from([Buffer.from('quick')]));
    now = new Date('2025-03-10T08:00:02Z');
    slow.end('slow');
    const { key } = await slowWrite;
    expect(segmentOf(key)).toBe(segmentOf(quick.key));
    expect(await contentOf(spool, key)).toBe('slow');
  });

  it('refuses a write into a segment whose directory was deleted, then writes into a new one', async () => {
    const root = await directory();
    const spool = new LocalDirectorySpool(root, { now: () => new Date('2025-03-10T08:00:00Z') });
    const before = await spool.write('before', Readable.from([Buffer.from('before')]));
    await rm(join(root, '2025-03-10'), { recursive: true });
    // Its descriptor still writes, into an unlinked file: answered, that body would be lost.
    await expect(spool.write('lost', Readable.from([Buffer.from('lost')]))).rejects.toMatchObject({
      code: 'ENOENT',
    });
    const after = await spool.write('after', Readable.from([Buffer.from('after')]));
    expect(segmentOf(after.key)).not.toBe(segmentOf(before.key));
    expect(await contentOf(spool, after.key)).toBe('after');
    expect(await filesUnder(root)).toEqual([`2025-03-10/${segmentOf(after.key)}.seg`]);
  });

  it('keeps the segments of two spools on one directory apart (two relay processes)', async () => {
    const root = await directory();
    const spools = [new LocalDirectorySpool(root), new LocalDirectorySpool(root)];
    const written = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        spools[i % 2]!.write(`two-${i}`, Readable.from([Buffer.from(`body ${i}`)])),
      ),
    );
    expect(new Set(written.map(({ key }) => segmentOf(key))).size).toBe(2);
    for (const [i, { key }] of written.entries())
      expect(await contentOf(spools[(i + 1) % 2]!, key)).toBe(`body ${i}`);
  });

  it('counts the live bodies of a segment of several megabytes record by record', async () => {
    const root = await directory();
    const spool = new LocalDirectorySpool(root, { now: () => new Date('2025-03-10T08:00:00Z') });
    // Sizes that put record boundaries at every position relative to the sweep's 1 MB window.
    const written = [];
    for (let i = 0; i < 400; i++) {
      written.push(await spool.write(`many-${i}`, Readable.from([Buffer.alloc(5_000 + i * 37, 'x')])));
    }
    expect(new Set(written.map(({ key }) => segmentOf(key))).size).toBe(1);
    for (const { key } of written.filter((_, i) => i % 50 === 7)) await spool.remove(key);
    expect(await countSpooledBodies(root)).toBe(392);
    expect(await spool.removeOlderThan(new Date('2025-03-11T00:00:00Z'))).toBe(392);
  });

  it('counts the live bodies of a segment it sweeps, not the removed ones', async () => {
    const root = await directory();
    const spool = new LocalDirectorySpool(root, { now: () => new Date('2025-03-10T08:00:00Z') });
    const keys = [];
    for (const messageId of ['one', 'two', 'three']) {
      keys.push((await spool.write(messageId, Readable.from([Buffer.from(messageId)]))).key);
    }
    await spool.remove(keys[1]!);
    await expect(spool.read(keys[1]!)).rejects.toBeInstanceOf(SpoolBodyNotFoundError);
    expect(await contentOf(spool, keys[2]!)).toBe('three');
    expect(await spool.removeOlderThan(new Date('2025-03-11T00:00:00Z'))).toBe(2);
    expect(await filesUnder(root)).toEqual([]);
  });

  it('sweeps temporary files of writes that died over an hour ago, and only those', async () => {
    const root = await directory();
    const now = new Date('2025-03-10T12:00:00Z');
    const spool = new LocalDirectorySpool(root, { now: () => now });
    await mkdir(join(root, 'tmp'), { recursive: true });
    await writeFile(join(root, 'tmp', 'died.1'), 'partial');
    await writeFile(join(root, 'tmp', 'in-flight.2'), 'partial');
    await utimes(
      join(root, 'tmp', 'died.1'),
      new Date('2025-03-10T10:59:59Z'),
      new Date('2025-03-10T10:59:59Z'),
    );
    await utimes(
      join(root, 'tmp', 'in-flight.2'),
      new Date('2025-03-10T11:30:00Z'),
      new Date('2025-03-10T11:30:00Z'),
    );

    expect(await spool.removeOlderThan(new Date('2025-03-01T00:00:00Z'))).toBe(0);
    expect(await filesUnder(root)).toEqual(['tmp/in-flight.2']);
  });

  it('leaves directories and files that are not bodies alone', async () => {
    const root = await directory();
    const spool = new LocalDirectorySpool(root, { now: () => new Date('2025-03-01T00:00:00Z') });
    await spool.write('old', Readable.from([Buffer.from('x')]));
    await mkdir(join(root, 'not-a-day'), { recursive: true });
    await writeFile(join(root, 'not-a-day', 'keep.eml'), 'x');
    await writeFile(join(root, 'README'), 'x');

    expect(await spool.removeOlderThan(new Date('2025-03-10T00:00:00Z'))).toBe(1);
    expect(await filesUnder(root)).toEqual(['README', 'not-a-day/keep.eml']);
  });

  it('sweeps a body written on the system clock by the file time its write set', async () => {
    const root = await directory();
    // No clock given, so no time is stamped on the file: the sweep must find the write's own.
    const spool = new LocalDirectorySpool(root);
    const before = Date.now();
    const { key } = await spool.write('system-clock', Readable.from([Buffer.from('x')]));

    expect(await spool.removeOlderThan(new Date(before - 60_000))).toBe(0);
    expect(await spool.removeOlderThan(new Date(Date.now() + 60_000))).toBe(1);
    await expect(spool.read(key)).rejects.toBeInstanceOf(SpoolBodyNotFoundError);
  });

  it('keeps a body whose file time is within a second of the cutoff, for the coarse file clock', async () => {
    const root = await directory();
    const spool = new LocalDirectorySpool(root, { now: () => new Date('2025-03-10T08:00:00.000Z') });
    await spool.write('at-eight', Readable.from([Buffer.from('x')]));
    expect(await spool.removeOlderThan(new Date('2025-03-10T08:00:01.000Z'))).toBe(0);
    expect(await spool.removeOlderThan(new Date('2025-03-10T08:00:01.001Z'))).toBe(1);
  });

  it('writes into a day again after the sweep removed its directory or a later day closed it', async () => {
    const root = await directory();
    let now = new Date('2025-03-10T10:00:00Z');
    const spool = new LocalDirectorySpool(root, { now: () => now });
    const write = async (messageId: string): Promise<string> =>
      (await spool.write(messageId, Readable.from([Buffer.from(messageId)]))).key;

    await write('before-sweep');
    // A cutoff ahead of the clock removes the directory the spool holds open for today.
    expect(await spool.removeOlderThan(new Date('2025-03-11T00:00:00Z'))).toBe(1);
    const keys = [await write('after-sweep')];
    now = new Date('2025-03-11T01:00:00Z');
    keys.push(await write('next-day'));
    // A clock set back: the first day's directory was closed when the next day began.
    now = new Date('2025-03-10T11:00:00Z');
    keys.push(await write('clock-set-back'));

    // A segment for each return to a day: after the sweep, the next day, the clock set back.
    expect((await filesUnder(root)).map((file) => file.split('/')[0])).toEqual([
      '2025-03-10',
      '2025-03-10',
      '2025-03-11',
    ]);
    for (const key of keys) expect(await contentOf(spool, key)).toBe(key.split('/').at(-1));
  });

  it('resolves every one of many small writes made at once, each body intact', async () => {
    // Enough writers that most link while a directory fsync is in flight and share the next one.
    const root = await directory();
    const spool = new LocalDirectorySpool(root);
    const messageIds = Array.from({ length: 300 }, (_, i) => `burst-${i}`);
    const written = await Promise.all(
      messageIds.map((messageId) => spool.write(messageId, Readable.from([Buffer.from(messageId)]))),
    );
    for (const [i, { key }] of written.entries()) {
      expect(await contentOf(spool, key)).toBe(messageIds[i]);
    }
    expect((await filesUnder(root)).filter((file) => file.startsWith('tmp/'))).toEqual([]);
  });
});
