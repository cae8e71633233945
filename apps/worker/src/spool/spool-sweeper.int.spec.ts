import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, loadConfig } from '@relay/config';
import { LocalDirectorySpool, SpoolBodyNotFoundError } from '@relay/spool';
import { SpoolSweeper } from './spool-sweeper.js';

const DAY = 86_400_000;
const directories: string[] = [];

afterEach(async () => {
  for (const directory of directories.splice(0)) await rm(directory, { recursive: true, force: true });
});

describe('SpoolSweeper on a real spool directory', () => {
  it('removes the bodies accepted more than SPOOL_RETENTION ago and keeps the rest', async () => {
    const root = await mkdtemp(join(tmpdir(), 'relay-sweep-'));
    directories.push(root);
    const now = new Date('2026-03-20T12:00:00Z');
    let clock = now;
    const spool = new LocalDirectorySpool(root, { now: () => clock });
    const writeAt = async (daysAgo: number, id: string): Promise<string> => {
      clock = new Date(now.getTime() - daysAgo * DAY);
      return (await spool.write(id, Readable.from([Buffer.from(`body ${id}\r\n`)]))).key;
    };
    const expired = await writeAt(5, 'expired');
    const justExpired = await writeAt(4.01, 'just-expired');
    const kept = await writeAt(3.99, 'kept');
    const fresh = await writeAt(0, 'fresh');
    const lines: string[] = [];
    const sweeper = new SpoolSweeper(
      loadConfig({ SPOOL_RETENTION: '4d' }),
      createLogger('info', {}, (line) => lines.push(line)),
      spool,
    );

    await sweeper.sweep(now);

    for (const gone of [expired, justExpired]) {
      await expect(spool.read(gone)).rejects.toBeInstanceOf(SpoolBodyNotFoundError);
    }
    for (const key of [kept, fresh]) await expect(spool.read(key)).resolves.toBeDefined();
    expect(lines.map((line) => JSON.parse(line) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ msg: 'spool sweep', removed: 2, before: '2026-03-16T12:00:00.000Z' }),
    ]);
  });

  it('logs a failed sweep instead of rejecting, and sweeps again next time', async () => {
    const root = await mkdtemp(join(tmpdir(), 'relay-sweep-'));
    directories.push(root);
    // The spool's directory replaced by a plain file: listing it fails (ENOTDIR).
    const spoolPath = join(root, 'spool');
    await writeFile(spoolPath, 'not a directory');
    const lines: string[] = [];
    const sweeper = new SpoolSweeper(
      loadConfig({}),
      createLogger('info', {}, (line) => lines.push(line)),
      new LocalDirectorySpool(spoolPath),
    );
    await expect(sweeper.sweep()).resolves.toBeUndefined();
    expect(lines.map((line) => (JSON.parse(line) as { msg: string }).msg)).toEqual([
      'spool sweep failed; the next one retries',
    ]);
    await rm(spoolPath);
    await expect(sweeper.sweep()).resolves.toBeUndefined();
    expect(lines).toHaveLength(1);
  });
});
