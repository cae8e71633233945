import { Transform, type TransformCallback } from 'node:stream';
import { readMessageHeaders, type MessageHeaders } from './message-headers.js';
import { rfc5322Date } from './trace-headers.js';

const BLANK_LINE = Buffer.from('\r\n\r\n');
/** A header block larger than this is treated as complete, so memory stays bounded. */
const MAX_HEADER_BYTES = 1024 * 1024;

export interface StampOptions {
  /** Prepended as is (the Received trace line). */
  readonly received: string;
  /** Used when the message has no Message-ID (without angle brackets). */
  readonly fallbackMessageId: string;
  readonly now: Date;
}

/**
 * Streams a CRLF-normalised message through, prepending the Received line and adding Message-ID
 * and Date at the end of the header block when the message lacks them. Only the header block is
 * buffered; the body passes through untouched. `headers` resolves with what the block says
 * (after the additions) once it has been read.
 */
export class HeaderStamper extends Transform {
  readonly headers: Promise<MessageHeaders>;
  private resolveHeaders!: (headers: MessageHeaders) => void;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private inHeader = true;

  constructor(private readonly options: StampOptions) {
    super();
    this.headers = new Promise((resolve) => {
      this.resolveHeaders = resolve;
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (!this.inHeader) {
      done(null, chunk);
      return;
    }
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
    const all = Buffer.concat(this.buffered, this.bufferedBytes);
    this.buffered = [all];
    const end = all[0] === 0x0d && all[1] === 0x0a ? 0 : all.indexOf(BLANK_LINE);
    if (end === -1 && this.bufferedBytes < MAX_HEADER_BYTES) {
      done();
      return;
    }
    // The block keeps its last header's CRLF; the rest starts with the blank line.
    const split = end === -1 ? all.length : end === 0 ? 0 : end + 2;
    this.emitHeader(all.subarray(0, split));
    done(null, all.subarray(split));
  }

  override _flush(done: TransformCallback): void {
    if (this.inHeader) {
      const all = Buffer.concat(this.buffered, this.bufferedBytes);
      const block =
        all.length === 0 || all.subarray(-2).equals(Buffer.from('\r\n'))
          ? all
          : Buffer.concat([all, Buffer.from('\r\n')]);
      this.emitHeader(block);
    }
    done();
  }

  private emitHeader(block: Buffer): void {
    this.inHeader = false;
    this.buffered = [];
    const text = block.toString('utf8');
    const found = readMessageHeaders(text);
    let added = '';
    let messageId = found.messageId;
    if (!messageId) {
      messageId = this.options.fallbackMessageId;
      added += `Message-ID: <${messageId}>\r\n`;
    }
    if (!found.hasDate) added += `Date: ${rfc5322Date(this.options.now)}\r\n`;
    this.push(Buffer.from(this.options.received, 'latin1'));
    this.push(block);
    if (added) this.push(Buffer.from(added, 'latin1'));
    this.resolveHeaders({ ...found, messageId, hasDate: true });
  }
}
