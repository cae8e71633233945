import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDkimKeys, type DkimKey } from './dkim-keys.js';
import { readFixture, testRenderOptions, verifyDkim } from './fixtures/corpus.js';
import { renderMessage, type RenderOptions } from './render-message.js';

// Needs no service, only the file system: a signed message larger than spoolMemoryBytes waits
// for its signature in a temporary file.
let keys: DkimKey[];
let dir: string;
beforeAll(async () => {
  keys = await generateDkimKeys({ domain: 'shop.example', selector: 'relay1' });
  dir = await mkdtemp(join(tmpdir(), 'render-spool-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const options = (spoolMemoryBytes: number, onRendered?: RenderOptions['onRendered']): RenderOptions =>
  testRenderOptions(keys, { spoolDir: dir, spoolMemoryBytes, ...(onRendered ? { onRendered } : {}) });

describe('the render spool', () => {
  it('spills a large message to a file, gives the same bytes, and removes the file', async () => {
    const input = readFixture('mixed-attachments.eml');
    let spooled: boolean | undefined;
    const fromFile = await buffer(
      renderMessage(
        Readable.from([input]),
        options(1024, (s) => (spooled = s.spooledToFile)),
      ),
    );
    const inMemory = await buffer(renderMessage(Readable.from([input]), options(1024 * 1024)));
    expect(spooled).toBe(true);
    expect(fromFile.equals(inMemory)).toBe(true);
    expect((await verifyDkim(fromFile, keys)).map((r) => r.result)).toEqual(['pass']);
    await sleep(50);
    expect(await readdir(dir)).toEqual([]);
  });

  it('removes the file when the reader goes away early', async () => {
    const stream = renderMessage(Readable.from([readFixture('mixed-attachments.eml')]), options(1024));
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    stream.destroy();
    await sleep(100);
    expect(await readdir(dir)).toEqual([]);
  });
});
