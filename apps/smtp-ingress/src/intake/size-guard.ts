import { Transform, type TransformCallback } from 'node:stream';

export class MessageTooLargeError extends Error {
  constructor(readonly maxSize: number) {
    super(`message exceeds the maximum size of ${maxSize} octets`);
  }
}

/**
 * Counts the octets the client sent (after dot-unstuffing, before any rewriting) and fails the
 * stream as soon as they pass `maxSize`, so an oversized body stops reaching the spool at once.
 */
export class SizeGuard extends Transform {
  private seen = 0;

  constructor(private readonly maxSize: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.maxSize) done(new MessageTooLargeError(this.maxSize));
    else done(null, chunk);
  }
}
