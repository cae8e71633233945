import type { Readable } from 'node:stream';
import { SpoolSizeExceededError } from './spool.port.js';

/**
 * Reads `body` as blocks of exactly `blockSize` octets (the last one shorter; none for an empty
 * body), whatever the sizes of the source's chunks, so an adapter holds about one block at a time
 * and a small body costs no more than its size. Throws SpoolSizeExceededError as soon as the
 * octets pass `maxSize`.
 *
 * The source is pulled one chunk at a time (its backpressure: nothing is read while the consumer
 * stores a block) and is never destroyed, even when this throws: it belongs to the caller, who
 * may still have to drain it (the SMTP edge must read DATA to its end before it can reply).
 */
export async function* readBlocks(
  body: Readable,
  blockSize: number,
  maxSize = Number.POSITIVE_INFINITY,
): AsyncGenerator<Buffer, void, undefined> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let total = 0;
  for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer | string>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    total += bytes.length;
    if (total > maxSize) throw new SpoolSizeExceededError(maxSize);
    pending.push(bytes);
    pendingBytes += bytes.length;
    if (pendingBytes < blockSize) continue;

    const joined = pending.length === 1 ? bytes : Buffer.concat(pending, pendingBytes);
    let offset = 0;
    for (; joined.length - offset >= blockSize; offset += blockSize) {
      yield joined.subarray(offset, offset + blockSize);
    }
    // A copy, so the rest does not keep a large source chunk alive until the next block fills.
    pending = offset < joined.length ? [Buffer.from(joined.subarray(offset))] : [];
    pendingBytes = joined.length - offset;
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
}
