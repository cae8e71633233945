import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;

/**
 * Rewrites every bare CR and bare LF of the DATA stream to CRLF before anything is stored, so that
 * no end-of-data variant (`\n.\n`, `\r\n.\n`, `\n.\r\n`, `\r.\r\n`) can later be read as the end of
 * a message by this relay or a server downstream (SMTP smuggling). A CR at the end of a chunk is
 * held back until the next byte shows whether an LF follows.
 */
export class CrlfNormaliser extends Transform {
  private pendingCr = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    done(null, this.normalise(chunk));
  }

  override _flush(done: TransformCallback): void {
    done(null, this.pendingCr ? Buffer.from('\r\n') : undefined);
  }

  private normalise(chunk: Buffer): Buffer {
    // Fast path: most chunks of well-formed mail need no change.
    if (!this.pendingCr && isCleanCrlf(chunk)) return chunk;
    const out = Buffer.allocUnsafe(chunk.length * 2 + 2);
    let o = 0;
    let i = 0;
    if (this.pendingCr) {
      out[o++] = CR;
      out[o++] = LF;
      this.pendingCr = false;
      if (chunk[0] === LF) i = 1;
    }
    for (; i < chunk.length; i++) {
      const byte = chunk[i] as number;
      if (byte === CR) {
        if (i + 1 === chunk.length) {
          this.pendingCr = true;
        } else {
          out[o++] = CR;
          out[o++] = LF;
          if (chunk[i + 1] === LF) i++;
        }
      } else if (byte === LF) {
        out[o++] = CR;
        out[o++] = LF;
      } else {
        out[o++] = byte;
      }
    }
    return out.subarray(0, o);
  }
}

/** True when every CR is followed by LF and every LF preceded by CR, and no CR ends the chunk. */
function isCleanCrlf(chunk: Buffer): boolean {
  let from = 0;
  for (;;) {
    const lf = chunk.indexOf(LF, from);
    const cr = chunk.indexOf(CR, from);
    if (lf === -1 && cr === -1) return true;
    if (cr === -1 || lf !== cr + 1) return false;
    from = lf + 1;
  }
}
