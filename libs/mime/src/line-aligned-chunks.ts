import { Transform, type TransformCallback } from 'node:stream';

/**
 * Re-cuts a byte stream so that every chunk ends with a LF (the last one excepted).
 *
 * mailsplit 5.4.6 drops bytes when a chunk ends between the CR and the LF of a body line and
 * the next chunk does not end a line (found with this lib's chunking tests; mailsplit's own
 * ChunkedPassthrough only makes that rarer by gluing chunks to 64 KB). The Splitter never sees
 * such a chunk behind this transform. A line longer than a chunk is held until its LF, in a
 * list, and joined once.
 */
export class LineAlignedChunks extends Transform {
  private held: Buffer[] = [];
  private heldBytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const lastLf = chunk.lastIndexOf(0x0a);
    if (lastLf === -1) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      callback();
      return;
    }
    const head = lastLf === chunk.length - 1 ? chunk : chunk.subarray(0, lastLf + 1);
    if (this.heldBytes > 0) {
      this.held.push(head);
      this.push(Buffer.concat(this.held, this.heldBytes + head.length));
    } else {
      this.push(head);
    }
    this.held = lastLf === chunk.length - 1 ? [] : [chunk.subarray(lastLf + 1)];
    this.heldBytes = chunk.length - lastLf - 1;
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.heldBytes > 0) this.push(Buffer.concat(this.held, this.heldBytes));
    this.held = [];
    callback();
  }
}
