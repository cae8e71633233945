import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDkimKeys, type DkimKey } from './dkim-keys.js';
import {
  ACCOUNT,
  MESSAGE,
  RECIPIENT,
  TRACKING_BASE,
  TRACKING_KEY,
  readFixture,
  verifyDkim,
} from './fixtures/corpus.js';
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

const options = (spoolMemoryBytes: number, onRendered?: RenderOptions['onRendered']): RenderOptions => ({
  accountId: ACCOUNT,
  messageId: MESSAGE,
  recipient: RECIPIENT,
  wrapWidth: 76,
  tracking: { opens: true, clicks: true },
  listUnsubscribe: true,
  trackingBaseUrl: TRACKING_BASE,
  trackingKey: TRACKING_KEY,
  dkim: { domain: 'shop.example', selector: 'relay1', privateKeys: keys.map((key) => key.privateKeyPem) },
  signTime: new Date('2026-03-03T09:14:05Z'),
  spoolDir: dir,
  spoolMemoryBytes,
  ...(onRendered ? { onRendered } : {}),
});

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
