import { Transform, type TransformCallback } from 'node:stream';
import type { MimeNode, SplitterObject } from './cjs-modules.js';
import { withTransferEncoding } from './header-block.js';
import { guardAttachmentLines, rewriteTextPart, type PartRewrite, type PartResult } from './text-part.js';
import { LongLineFolder, MAX_LINE_OCTETS } from './transfer-encoding.js';

/** What happens to a leaf part's body. */
type LeafMode =
  /** A text/plain or text/html body part: collected, then tracking, wrapping, the 998 rule. */
  | 'text'
  /** Any other part sent as is (7bit/8bit/binary): collected, then only the 998 rule. */
  | 'guard'
  /** A base64 or quoted-printable attachment: streamed, over-long lines folded on the way. */
  | 'fold'
  /** message/* and unknown encodings: streamed untouched. */
  | 'pass';

interface Leaf {
  readonly node: MimeNode;
  readonly mode: LeafMode;
  readonly header: Buffer;
  /** Fields added in front of the root header block (empty for other parts). */
  readonly added: Buffer;
  readonly chunks: Buffer[];
  size: number;
  readonly folder?: LongLineFolder;
  /** 'pass' leaves: octets since the last LF, and the longest line seen. */
  lineLength: number;
  longestLine: number;
}

export interface RewriteSummary {
  /** Parts whose bytes changed. */
  partsRewritten: number;
  /** Parts whose Content-Transfer-Encoding had to change (998-octet rule). */
  partsReencoded: number;
  /** Attachments whose over-long base64/quoted-printable lines were folded. */
  partsFolded: number;
  /** Parts that needed a change but kept their content, with why. */
  readonly skipped: string[];
}

export interface MessageRewriterOptions extends PartRewrite {
  /** Header fields (CRLF-terminated) to put in front of the root header block. */
  rootFields(root: MimeNode): string;
  /** Called once the last byte is pushed. */
  readonly onFlushed?: (() => void) | undefined;
}

function modeOf(node: MimeNode): LeafMode {
  const type = node.contentType || 'text/plain';
  // RFC 2046 5.2.1: message/rfc822 may only be 7bit, 8bit or binary. One sent inline is split
  // into its own parts (which the 998 rule then reaches); an attached one stays whole.
  if (type.startsWith('message/')) return 'pass';
  const inside = enclosingKind(node);
  // RFC 1847: any change to signed or encrypted content breaks it; such content is 7bit-safe.
  if (inside === 'protected') return 'pass';
  const encoding = node.encoding;
  const known = encoding === 'base64' || encoding === 'quoted-printable';
  const asIs = encoding === '' || encoding === '7bit' || encoding === '8bit' || encoding === 'binary';
  const bodyText = (type === 'text/plain' || type === 'text/html') && node.disposition !== 'attachment';
  // A forwarded message is someone else's content: no tracking or wrapping inside it.
  if (bodyText && (known || asIs) && inside === 'none') return 'text';
  if (known) return 'fold';
  return asIs ? 'guard' : 'pass';
}

function enclosingKind(node: MimeNode): 'none' | 'embedded' | 'protected' {
  let kind: 'none' | 'embedded' | 'protected' = 'none';
  for (let parent = node.parentNode; parent !== false; parent = parent.parentNode) {
    const type = parent.contentType || '';
    if (type === 'multipart/signed' || type === 'multipart/encrypted') return 'protected';
    if (type === 'message/rfc822' || type === 'message/global') kind = 'embedded';
  }
  return kind;
}

/**
 * mailsplit Splitter objects in, message bytes out. Headers, boundaries, preamble, epilogue and
 * every part that needs no change are pushed exactly as they were read; only the parts listed in
 * LeafMode are looked at. The root header block (with the fields `rootFields` adds in front) is
 * always pushed as one chunk, before anything else.
 */
export class MessageRewriter extends Transform {
  readonly summary: RewriteSummary = { partsRewritten: 0, partsReencoded: 0, partsFolded: 0, skipped: [] };
  private leaf: Leaf | null = null;

  constructor(private readonly options: MessageRewriterOptions) {
    super({ writableObjectMode: true, readableObjectMode: false });
  }

  override _transform(object: SplitterObject, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.accept(object);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.finishLeaf();
      this.options.onFlushed?.();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  private accept(object: SplitterObject): void {
    if (object.type === 'node') {
      this.finishLeaf();
      this.startNode(object);
      return;
    }
    const value = object.value;
    if (object.type === 'data') {
      this.finishLeaf();
      if (value && value.length > 0) this.push(value);
      return;
    }
    if (!value || value.length === 0) return;
    const leaf = this.leaf;
    if (leaf === null) {
      this.push(value);
    } else if (leaf.mode === 'pass') {
      measureLines(leaf, value);
      this.push(value);
    } else if (leaf.folder) {
      for (const piece of leaf.folder.push(value)) this.push(piece);
    } else {
      leaf.chunks.push(value);
      leaf.size += value.length;
    }
  }

  private startNode(node: MimeNode): void {
    const header = node.getHeaders();
    const added = node.root ? Buffer.from(this.options.rootFields(node), 'latin1') : Buffer.alloc(0);
    if (node.multipart) {
      this.pushHeader(added, header);
      return;
    }
    const mode = modeOf(node);
    if (mode === 'fold' || mode === 'pass') {
      this.pushHeader(added, header);
    }
    const folder =
      mode === 'fold' ? new LongLineFolder(node.encoding as 'base64' | 'quoted-printable') : undefined;
    this.leaf = {
      node,
      mode,
      header,
      added,
      chunks: [],
      size: 0,
      lineLength: 0,
      longestLine: 0,
      ...(folder ? { folder } : {}),
    };
  }

  private finishLeaf(): void {
    const leaf = this.leaf;
    if (leaf === null) return;
    this.leaf = null;
    if (leaf.mode === 'pass') {
      if (Math.max(leaf.longestLine, leaf.lineLength) > MAX_LINE_OCTETS) {
        this.summary.skipped.push(
          `${leaf.node.contentType || 'text/plain'}: a line over ${MAX_LINE_OCTETS} octets kept (RFC 2046 allows no re-encoding)`,
        );
      }
      return;
    }
    if (leaf.folder) {
      for (const piece of leaf.folder.end()) this.push(piece);
      if (leaf.folder.folded) this.summary.partsFolded++;
      return;
    }
    const body =
      leaf.chunks.length === 1 ? (leaf.chunks[0] as Buffer) : Buffer.concat(leaf.chunks, leaf.size);
    const result: PartResult =
      leaf.mode === 'text'
        ? rewriteTextPart(leaf.node, body, this.options)
        : guardAttachmentLines(leaf.node, body);
    if (result.skipped !== undefined)
      this.summary.skipped.push(`${leaf.node.contentType || 'text/plain'}: ${result.skipped}`);
    if (result.changed) this.summary.partsRewritten++;
    let header = leaf.header;
    if (result.newTransferEncoding !== undefined) {
      this.summary.partsReencoded++;
      header = withTransferEncoding(header, result.newTransferEncoding);
    }
    this.pushHeader(leaf.added, header);
    if (result.body.length > 0) this.push(result.body);
  }

  private pushHeader(added: Buffer, header: Buffer): void {
    this.push(added.length > 0 ? Buffer.concat([added, header]) : header);
  }
}

function measureLines(leaf: Leaf, chunk: Buffer): void {
  let start = 0;
  for (let lf = chunk.indexOf(0x0a); lf !== -1; lf = chunk.indexOf(0x0a, start)) {
    leaf.longestLine = Math.max(leaf.longestLine, leaf.lineLength + lf - start - 1);
    leaf.lineLength = 0;
    start = lf + 1;
  }
  leaf.lineLength += chunk.length - start;
}
