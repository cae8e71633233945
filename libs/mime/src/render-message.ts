import { tmpdir } from 'node:os';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { signTrackingToken } from '@relay/domain';
import { Splitter, type MimeNode } from './cjs-modules.js';
import { createDkimBodyHasher, dkimSignatureFields, type DkimSigning } from './dkim-sign.js';
import { headerField } from './header-block.js';
import { LineAlignedChunks } from './line-aligned-chunks.js';
import type { TrackingCounts, TrackingRewrite } from './link-tracking.js';
import { MessageRewriter, type RewriteSummary } from './message-rewriter.js';
import { RenderSpool } from './render-spool.js';

export interface RenderOptions {
  readonly accountId: string;
  readonly messageId: string;
  /** The one recipient this copy is for: every token carries it. */
  readonly recipient: string;
  /** Account `wrapWidth` [76]: columns of 7bit/8bit text lines; 0 = no wrapping (998 octets still hold). */
  readonly wrapWidth: number;
  readonly tracking: {
    readonly opens: boolean;
    readonly clicks: boolean;
    /** Also track <a> links whose visible text is itself a URL [false]. */
    readonly trackUrlTextLinks?: boolean;
  };
  /** Add List-Unsubscribe and List-Unsubscribe-Post (RFC 8058) [account setting, default on]. */
  readonly listUnsubscribe: boolean;
  /** `https://<account tracking domain>`, else config TRACKING_BASE_URL. */
  readonly trackingBaseUrl: string;
  /** HMAC key of tracking tokens (config TRACKING_SECRET). */
  readonly trackingKey: Buffer | string;
  /** Sign last, after every rewrite; absent: unsigned. */
  readonly dkim?: DkimSigning;
  /** The DKIM t= tag [now]. */
  readonly signTime?: Date;
  /** Where a signed message over `spoolMemoryBytes` waits for its signature [os.tmpdir()]. */
  readonly spoolDir?: string;
  /** [4 MiB] */
  readonly spoolMemoryBytes?: number;
  /** Called once the message is fully rendered (before the last bytes are read), for the delivery log line. */
  readonly onRendered?: (summary: RenderSummary) => void;
}

export interface RenderSummary extends RewriteSummary, TrackingCounts {
  /** 'added', 'sender' (the sender's own List-Unsubscribe was kept) or 'off'. */
  readonly listUnsubscribe: 'added' | 'sender' | 'off';
  /** "<d>/<s>/<a>" of each DKIM-Signature added. */
  readonly signatures: readonly string[];
  /** True when the signed message waited in a file rather than in memory. */
  readonly spooledToFile: boolean;
}

const DEFAULT_SPOOL_MEMORY_BYTES = 4 * 1024 * 1024;

/**
 * Renders one recipient's copy of a message: the streaming MIME rewrite (tracking, unsubscribe
 * link, wrapping, the 998-octet rule; every byte not changed stays as submitted), the
 * List-Unsubscribe fields, then the DKIM signature over the result.
 *
 * Without DKIM the output streams as the input is read. With DKIM the rendered message is held
 * once (in memory up to `spoolMemoryBytes`, else in a temporary file) while the body hash is
 * computed on the way, and is then read out behind its DKIM-Signature fields. Errors, including
 * a DKIM key that cannot sign, destroy the returned stream: a message is never sent unsigned
 * because signing failed.
 */
export function renderMessage(input: Readable, options: RenderOptions): Readable {
  const tracking = trackingRewrite(options);
  const counts: TrackingCounts = { clicks: 0, urlTextLinksLeft: 0, unsubscribeLinks: 0, openPixels: 0 };
  let listUnsubscribe: RenderSummary['listUnsubscribe'] = 'off';
  const dkim = options.dkim !== undefined && options.dkim.privateKeys.length > 0 ? options.dkim : undefined;
  const summary = (signatures: readonly string[], spooledToFile: boolean): RenderSummary => ({
    ...rewriter.summary,
    ...counts,
    listUnsubscribe,
    signatures,
    spooledToFile,
  });
  const rewriter = new MessageRewriter({
    tracking,
    wrapWidth: options.wrapWidth,
    counts,
    rootFields: (root: MimeNode) => {
      if (!options.listUnsubscribe) return '';
      // RFC 2369 allows one List-Unsubscribe; a sender who set their own runs their own list.
      if (root.headers.get('list-unsubscribe').length > 0) {
        listUnsubscribe = 'sender';
        return '';
      }
      listUnsubscribe = 'added';
      const fields = headerField('List-Unsubscribe', `<${tracking.unsubscribeUrl}>`);
      // RFC 8058 3.1: one-click needs an HTTPS URI; a plain-http base (development) gets none.
      return tracking.unsubscribeUrl.startsWith('https:')
        ? fields + headerField('List-Unsubscribe-Post', 'List-Unsubscribe=One-Click')
        : fields;
    },
    onFlushed: dkim === undefined ? () => options.onRendered?.(summary([], false)) : undefined,
  });
  const aligner = new LineAlignedChunks();
  const splitter = new Splitter({ defaultInlineEmbedded: true });

  // Plain pipe() rather than stream.pipeline(): the latter costs an AbortController and an
  // Error with a stack trace per call, a measurable share of rendering a 5 KB message.
  // pipe() forwards no errors and no early close, so both are wired by hand.
  const signed = dkim === undefined ? null : new PassThrough();
  const output: Readable = signed ?? rewriter;
  const spool =
    dkim === undefined
      ? null
      : new RenderSpool(options.spoolMemoryBytes ?? DEFAULT_SPOOL_MEMORY_BYTES, options.spoolDir ?? tmpdir());
  const fail = (error: Error): void => {
    output.destroy(error);
    input.destroy();
    aligner.destroy();
    splitter.destroy();
    rewriter.destroy();
    void spool?.discard().catch(() => undefined);
  };
  input.on('error', fail);
  aligner.on('error', fail);
  splitter.on('error', fail);
  output.once('close', () => {
    input.destroy();
    aligner.destroy();
    splitter.destroy();
    void spool?.discard().catch(() => undefined);
  });
  input.pipe(aligner).pipe(splitter).pipe(rewriter);
  if (dkim === undefined || spool === null || signed === null) return output;

  rewriter.on('error', fail);
  const sink = new SigningSink(spool);
  sink.on('error', fail);
  sink.once('finish', () => {
    try {
      const { fields, signatures } = dkimSignatureFields(
        sink.headerBlock(),
        sink.bodyHash(),
        dkim,
        options.signTime ?? new Date(),
      );
      options.onRendered?.(summary(signatures, spool.spilled));
      signed.write(fields);
    } catch (error) {
      fail(error as Error);
      return;
    }
    spool.drainInto(signed).catch(fail);
  });
  rewriter.pipe(sink);
  return output;
}

function trackingRewrite(options: RenderOptions): TrackingRewrite {
  const base = new URL(options.trackingBaseUrl);
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw new Error(`trackingBaseUrl must be an http(s) URL, got ${options.trackingBaseUrl}`);
  }
  if (!Number.isInteger(options.wrapWidth) || options.wrapWidth < 0) {
    throw new Error(`wrapWidth must be a whole number >= 0, got ${options.wrapWidth}`);
  }
  const baseUrl = `${base.origin}${base.pathname}`.replace(/\/+$/, '');
  const { accountId, messageId, recipient, trackingKey } = options;
  const token = (kind: 'o' | 'u'): string =>
    signTrackingToken({ kind, accountId, messageId, recipient }, trackingKey);
  const clickUrls = new Map<string, string>();
  return {
    baseUrl,
    opens: options.tracking.opens,
    clicks: options.tracking.clicks,
    trackUrlTextLinks: options.tracking.trackUrlTextLinks ?? false,
    unsubscribeUrl: `${baseUrl}/u.z?${token('u')}`,
    openPixelUrl: `${baseUrl}/o.z?${token('o')}`,
    clickUrl(url) {
      let tracked = clickUrls.get(url);
      if (tracked === undefined) {
        tracked = `${baseUrl}/c.z?${signTrackingToken({ kind: 'c', accountId, messageId, recipient, url }, trackingKey)}`;
        clickUrls.set(url, tracked);
      }
      return tracked;
    },
  };
}

const LF = 0x0a;

/**
 * Takes the rendered message: the root header block (up to the first empty line, as mailauth's
 * verifier splits it) is kept for the signature, the body goes through the relaxed body hash,
 * and every byte goes to the spool.
 */
class SigningSink extends Writable {
  private readonly hasher = createDkimBodyHasher();
  private header: Buffer[] = [];
  private inBody = false;

  constructor(private readonly spool: RenderSpool) {
    super();
  }

  headerBlock(): Buffer {
    return Buffer.concat(this.header);
  }

  bodyHash(): string {
    return this.hasher.digest('base64');
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.inBody) {
      this.hasher.update(chunk);
    } else {
      this.header.push(chunk);
      const block = this.header.length === 1 ? chunk : Buffer.concat(this.header);
      const end = headerEnd(block);
      if (end !== -1) {
        this.header = [block.subarray(0, end)];
        this.inBody = true;
        if (end < block.length) this.hasher.update(block.subarray(end));
      }
    }
    this.spool.write(chunk).then(() => callback(), callback);
  }
}

/** Index just past the empty line that ends the header block, or -1. */
function headerEnd(block: Buffer): number {
  let at = block.indexOf(LF);
  while (at !== -1 && at + 1 < block.length) {
    if (block[at + 1] === LF) return at + 2;
    if (block[at + 1] === 0x0d && block[at + 2] === LF) return at + 3;
    at = block.indexOf(LF, at + 1);
  }
  return -1;
}
