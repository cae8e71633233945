import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { SpoolBodyNotFoundError, SpoolSizeExceededError, type Spool } from './spool.port.js';

/** One empty spool for one test. */
export interface SpoolUnderTest {
  readonly spool: Spool;
  /** Everything the adapter has stored, temporaries included (files, or body and chunk rows). */
  readonly stored: () => Promise<string[]>;
  readonly dispose: () => Promise<void>;
}

export interface SpoolHarness {
  /** `now` is the clock the adapter stamps its writes with; the system clock when absent. */
  open(now?: () => Date): Promise<SpoolUnderTest>;
  /**
   * How long before a sweep's cutoff a body may have been written and still be kept: 0 for an
   * adapter that removes bodies one by one, a segment's span for one that frees them in groups.
   */
  readonly sweepSlackMs: number;
}

/** The message id a key ends with (every adapter's keys do). */
function messageIdOf(key: string): string | undefined {
  return key.split('/').at(-1);
}

const KiB = 1024;
const MiB = 1024 * KiB;
const SLOW_MS = 120_000;

/** The given pieces as one byte stream, each piece a chunk of its own. */
function bodyOf(...pieces: (Buffer | string)[]): Readable {
  return Readable.from(
    pieces.map((piece) => (typeof piece === 'string' ? Buffer.from(piece, 'latin1') : piece)),
    { objectMode: false },
  );
}

interface GeneratedBody {
  readonly stream: Readable;
  /** Hex SHA-256 of every octet produced so far (all of them once the stream has ended). */
  digest(): string;
}

/**
 * `size` random octets produced piece by piece, cycling through `pieceSizes` (sizes that do not
 * line up with any adapter's block), and never held whole. `onProduced` sees the running count.
 */
function generatedBody(
  size: number,
  pieceSizes: readonly number[],
  onProduced?: (produced: number) => void,
): GeneratedBody {
  const hash = createHash('sha256');
  let digest: string | undefined;
  async function* pieces(): AsyncGenerator<Buffer> {
    for (let produced = 0, i = 0; produced < size; i++) {
      onProduced?.(produced);
      const piece = randomBytes(Math.min(pieceSizes[i % pieceSizes.length] as number, size - produced));
      hash.update(piece);
      produced += piece.length;
      yield piece;
    }
  }
  return {
    stream: Readable.from(pieces(), { objectMode: false }),
    digest: () => (digest ??= hash.digest('hex')),
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function digestOf(stream: Readable, onRead?: (read: number) => void): Promise<string> {
  const hash = createHash('sha256');
  let read = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    read += (chunk as Buffer).length;
    onRead?.(read);
  }
  return hash.digest('hex');
}

async function contentOf(spool: Spool, key: string): Promise<Buffer> {
  return readAll(await spool.read(key));
}

/**
 * Live memory after a full collection, so garbage the code under test already dropped does not
 * count. Buffers live outside the V8 heap, hence arrayBuffers beside heapUsed. Two collections:
 * the backing stores of dead buffers are freed by a concurrent sweeper that the next collection
 * waits for, and until then they still count.
 */
function liveMemoryProbe(): () => number {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  return () => {
    gc();
    gc();
    const usage = process.memoryUsage();
    return usage.heapUsed + usage.arrayBuffers;
  };
}

/** Peak growth of live memory over the samples taken since it was created. */
function memoryGrowth(): { sample(): void; readonly peak: number } {
  const live = liveMemoryProbe();
  const baseline = live();
  let peak = 0;
  return {
    sample: () => void (peak = Math.max(peak, live() - baseline)),
    get peak() {
      return peak;
    },
  };
}

/**
 * The behaviour every Spool adapter must have. Each adapter's spec calls this with a harness
 * that gives each test an empty spool of its own.
 */
export function spoolContract(adapterName: string, harness: SpoolHarness): void {
  describe(`Spool contract: ${adapterName}`, () => {
    const disposals: (() => Promise<void>)[] = [];

    afterEach(async () => {
      for (const dispose of disposals.splice(0).reverse()) await dispose();
    });

    async function open(now?: () => Date): Promise<SpoolUnderTest> {
      const opened = await harness.open(now);
      disposals.push(() => opened.dispose());
      return opened;
    }

    it('gives back exactly the octets written: binary, CRLF, 8-bit and empty bodies', async () => {
      const { spool } = await open();
      const allOctets = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
      const bodies: Record<string, Buffer> = {
        binary: allOctets,
        crlf: Buffer.from('Subject: hi\r\n\r\nline one\r\n.\r\n..dot\r\nbare\nlf and bare\rcr\r\n', 'latin1'),
        eightBit: Buffer.concat([
          Buffer.from('Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nGrüße, 日本語, ', 'utf8'),
          Buffer.from('latin-1 \xe9\xff\r\n', 'latin1'),
        ]),
        empty: Buffer.alloc(0),
      };
      for (const [messageId, content] of Object.entries(bodies)) {
        // Split mid-character and mid-CRLF: the spool must not care where chunks end.
        const { key, size } = await spool.write(
          messageId,
          bodyOf(content.subarray(0, 7), content.subarray(7)),
        );
        expect(size).toBe(content.length);
        expect(await contentOf(spool, key)).toEqual(content);
      }
    });

    it(
      'round-trips a 5 MB body streamed from a generator in pieces of odd sizes',
      async () => {
        const { spool } = await open();
        const body = generatedBody(5 * MiB, [1, 7_919, 1_000_003, 65_536]);
        const { key, size } = await spool.write('five-mb', body.stream);
        expect(size).toBe(5 * MiB);
        expect(await digestOf(await spool.read(key))).toBe(body.digest());
      },
      SLOW_MS,
    );

    it('keys a body by the UTC day of its write and its message id', async () => {
      const { spool } = await open(() => new Date('2025-03-10T23:59:59.999Z'));
      const { key } = await spool.write('msg_01-AZ', bodyOf('x'));
      expect(key).toMatch(/^2025-03-10\/([a-z0-9-]+\/\d+\/)?msg_01-AZ$/);
    });

    it('accepts a body of exactly maxSize', async () => {
      const { spool } = await open();
      const maxSize = 600_000;
      const body = generatedBody(maxSize, [10_000]);
      const { key, size } = await spool.write('at-limit', body.stream, maxSize);
      expect(size).toBe(maxSize);
      expect(await digestOf(await spool.read(key))).toBe(body.digest());
    });

    it('rejects a body of maxSize + 1 with SpoolSizeExceededError and keeps nothing', async () => {
      const { spool, stored } = await open();
      const maxSize = 600_000;
      const write = spool.write('over-limit', generatedBody(maxSize + 1, [10_000]).stream, maxSize);
      await expect(write).rejects.toBeInstanceOf(SpoolSizeExceededError);
      await expect(write).rejects.toMatchObject({ maxSize });
      expect(await stored()).toEqual([]);
    });

    it('leaves an oversized body undestroyed, so the caller can drain the rest', async () => {
      const { spool } = await open();
      const body = generatedBody(1 * MiB, [10_000]);
      await expect(spool.write('drained', body.stream, 100_000)).rejects.toBeInstanceOf(
        SpoolSizeExceededError,
      );
      expect(body.stream.destroyed).toBe(false);
      const rest = await readAll(body.stream);
      expect(rest.length).toBeGreaterThan(800_000);
    });

    it('rejects with the source error and keeps nothing when the body fails midway', async () => {
      const { spool, stored } = await open();
      async function* failing(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 40; i++) yield randomBytes(10_000);
        throw new Error('client connection reset');
      }
      await expect(spool.write('broken', Readable.from(failing(), { objectMode: false }))).rejects.toThrow(
        'client connection reset',
      );
      expect(await stored()).toEqual([]);
    });

    it('refuses a message id that is not a plain token, writing nothing', async () => {
      const { spool, stored } = await open();
      for (const messageId of ['', '../escape', 'a/b', 'dot.ted', 'sp ace', 'x'.repeat(201)]) {
        await expect(spool.write(messageId, bodyOf('x'))).rejects.toThrow(/invalid message id/);
      }
      expect(await stored()).toEqual([]);
    });

    it('never replaces the first body written under a message id', async () => {
      // Rejected outright (a row or a file named by the id), or stored apart under a key of its
      // own (a segment record keyed by its place): either way the first key keeps its body.
      const { spool, stored } = await open();
      const first = await spool.write('twice', bodyOf('first body'));
      const before = await stored();
      const second = await spool.write('twice', bodyOf('second body')).then(
        (written) => written,
        (error: unknown) => {
          expect(String(error)).toMatch(/already spooled/);
          return undefined;
        },
      );
      expect((await contentOf(spool, first.key)).toString()).toBe('first body');
      if (second === undefined) expect(await stored()).toEqual(before);
      else {
        expect(second.key).not.toBe(first.key);
        expect((await contentOf(spool, second.key)).toString()).toBe('second body');
      }
    });

    it('rejects a read of an unknown or malformed key with SpoolBodyNotFoundError', async () => {
      const { spool } = await open();
      for (const key of ['2025-03-10/never-written', '../../etc/passwd', '2025-03-10/../x', '']) {
        await expect(spool.read(key)).rejects.toBeInstanceOf(SpoolBodyNotFoundError);
      }
    });

    it('removes a body, and removing it again or an unknown key is no error', async () => {
      const { spool } = await open();
      const gone = await spool.write('gone', bodyOf('bye'));
      const kept = await spool.write('kept', bodyOf('still here'));
      await spool.remove(gone.key);
      await expect(spool.read(gone.key)).rejects.toBeInstanceOf(SpoolBodyNotFoundError);
      await spool.remove(gone.key);
      await spool.remove('2025-03-10/never-written');
      await spool.remove('../../etc/passwd');
      expect((await contentOf(spool, kept.key)).toString()).toBe('still here');
    });

    it('removes only bodies written before the cutoff, on earlier days and on its own day', async () => {
      let now = new Date(0);
      const { spool } = await open(() => now);
      const cutoff = new Date('2025-03-10T12:00:00.000Z');
      const writeAt = async (at: string, messageId: string): Promise<string> => {
        now = new Date(at);
        return (await spool.write(messageId, bodyOf(messageId))).key;
      };
      const removed = [
        await writeAt('2025-03-08T23:00:00.000Z', 'two-days-before'),
        await writeAt(new Date(cutoff.getTime() - harness.sweepSlackMs - 1).toISOString(), 'just-before'),
      ];
      const kept = [
        await writeAt('2025-03-10T12:00:00.000Z', 'at-cutoff'),
        await writeAt('2025-03-10T13:00:00.000Z', 'same-day-after'),
        await writeAt('2025-03-11T01:00:00.000Z', 'next-day'),
      ];
      now = new Date('2025-03-11T02:00:00.000Z');

      expect(await spool.removeOlderThan(cutoff)).toBe(2);
      for (const key of removed) await expect(spool.read(key)).rejects.toBeInstanceOf(SpoolBodyNotFoundError);
      for (const key of kept) expect((await contentOf(spool, key)).toString()).toBe(messageIdOf(key));
      expect(await spool.removeOlderThan(cutoff)).toBe(0);
    });

    it(
      'keeps 20 bodies written concurrently intact',
      async () => {
        const { spool } = await open();
        const bodies = Array.from({ length: 20 }, (_, i) =>
          generatedBody(1 + i * 37_000, [4_096 + i * 1_000]),
        );
        const written = await Promise.all(
          bodies.map((body, i) => spool.write(`concurrent-${i}`, body.stream)),
        );
        for (const [i, { key, size }] of written.entries()) {
          expect(size).toBe(1 + i * 37_000);
          expect(await digestOf(await spool.read(key))).toBe(bodies[i]?.digest());
        }
      },
      SLOW_MS,
    );

    it(
      'writes and reads a 30 MB body with memory bounded well below its size',
      async () => {
        const { spool } = await open();
        const size = 30 * MiB;
        const limit = 15 * MiB;
        const sampleEvery = 2 * MiB;

        const writing = memoryGrowth();
        let nextSample = 0;
        const body = generatedBody(size, [64 * KiB], (produced) => {
          if (produced < nextSample) return;
          writing.sample();
          nextSample += sampleEvery;
        });
        const { key } = await spool.write('thirty-mb', body.stream, size);
        expect(writing.peak).toBeLessThan(limit);

        const reading = memoryGrowth();
        nextSample = 0;
        const digest = await digestOf(await spool.read(key), (read) => {
          if (read < nextSample) return;
          reading.sample();
          nextSample += sampleEvery;
        });
        expect(digest).toBe(body.digest());
        expect(reading.peak).toBeLessThan(limit);
        const mb = (octets: number): string => (octets / MiB).toFixed(1);
        console.info(
          `${adapterName}: live memory growth writing 30 MB ${mb(writing.peak)} MB, reading ${mb(reading.peak)} MB`,
        );
      },
      SLOW_MS,
    );
  });
}
