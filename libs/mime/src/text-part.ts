import type { MimeNode } from './cjs-modules.js';
import { trackHtml, trackPlainText, type TrackingCounts, type TrackingRewrite } from './link-tracking.js';
import { wrapText } from './line-wrap.js';
import { textCodecFor } from './text-codec.js';
import {
  MAX_LINE_OCTETS,
  decodeTransfer,
  encodeTransfer,
  longestLineOctets,
  transferEncodingOf,
} from './transfer-encoding.js';

export interface PartRewrite {
  readonly tracking: TrackingRewrite;
  readonly wrapWidth: number;
  readonly counts: TrackingCounts;
}

/** A part's new body, and its new Content-Transfer-Encoding when that had to change. */
export interface PartResult {
  readonly body: Buffer;
  /** False when `body` is the input, byte for byte. */
  readonly changed: boolean;
  readonly newTransferEncoding?: 'quoted-printable' | 'base64';
  /** Why a part that needed a change kept its content (unknown charset, unrepresentable text). */
  readonly skipped?: string;
}

const unchanged = (body: Buffer, skipped?: string): PartResult =>
  skipped === undefined ? { body, changed: false } : { body, changed: false, skipped };

/**
 * The rewrite of one text/plain or text/html body part: tracking first, then (only for parts
 * sent as they are, 7bit/8bit) wrapping, then the 998-octet rule. The part keeps its charset and
 * its transfer encoding; a 7bit/8bit part that would still carry a line over 998 octets becomes
 * quoted-printable. A part nothing applies to is returned as it came.
 */
export function rewriteTextPart(node: MimeNode, body: Buffer, rewrite: PartRewrite): PartResult {
  const encoding = transferEncodingOf(node.encoding);
  if (encoding === 'other') return unchanged(body, `transfer encoding ${node.encoding}`);
  const html = node.contentType === 'text/html';
  const bytes = decodeTransfer(body, encoding);
  const codec = textCodecFor(node.charset);

  let content = bytes;
  let contentChanged = false;
  let skipped: string | undefined;
  if (codec === null) {
    skipped = `charset ${String(node.charset)}`;
  } else {
    const text = codec.decode(bytes);
    let out = html
      ? trackHtml(text, rewrite.tracking, rewrite.counts, codec.toUnicode)
      : trackPlainText(text, rewrite.tracking, rewrite.counts, codec.toUnicode);
    if (encoding === 'identity') {
      out = wrapText(out, {
        width: rewrite.wrapWidth,
        html,
        isContinuation: codec.isContinuation,
        flowed: !html && node.flowed && { delSp: node.delSp },
      });
    }
    if (out !== text) {
      const encoded = codec.encode(out, html);
      if (encoded === null) {
        skipped = `text not representable in ${codec.charset}`;
      } else {
        content = encoded;
        contentChanged = true;
      }
    }
  }

  if (encoding === 'identity') {
    if (longestLineOctets(content) > MAX_LINE_OCTETS) {
      const trailing = endsWithLineBreak(content) && node.root;
      const qp = encodeTransfer(
        trailing ? withoutFinalBreak(content) : content,
        'quoted-printable',
        trailing,
      );
      return {
        body: qp,
        changed: true,
        newTransferEncoding: 'quoted-printable',
        ...(skipped ? { skipped } : {}),
      };
    }
    return contentChanged ? { body: content, changed: true } : unchanged(body, skipped);
  }
  if (contentChanged || longestLineOctets(body) > MAX_LINE_OCTETS) {
    // Quoted-printable keeps the part's final CRLF as content; base64 needs it put back.
    const trailing = encoding === 'base64' && endsWithLineBreak(body);
    return {
      body: encodeTransfer(content, encoding, trailing),
      changed: true,
      ...(skipped ? { skipped } : {}),
    };
  }
  return unchanged(body, skipped);
}

/**
 * A leaf part that is not a text body (an attachment, text or not) and is sent as it is: left
 * alone unless a line is over 998 octets, then base64 (quoted-printable for text/*, which stays
 * readable).
 */
export function guardAttachmentLines(node: MimeNode, body: Buffer): PartResult {
  if (longestLineOctets(body) <= MAX_LINE_OCTETS) return unchanged(body);
  const encoding = (node.contentType || 'text/plain').startsWith('text/') ? 'quoted-printable' : 'base64';
  const trailing = endsWithLineBreak(body) && node.root;
  return {
    body: encodeTransfer(trailing ? withoutFinalBreak(body) : body, encoding, trailing),
    changed: true,
    newTransferEncoding: encoding,
  };
}

function endsWithLineBreak(bytes: Buffer): boolean {
  return bytes.length > 0 && bytes[bytes.length - 1] === 0x0a;
}

function withoutFinalBreak(bytes: Buffer): Buffer {
  const cut = bytes.length > 1 && bytes[bytes.length - 2] === 0x0d ? 2 : 1;
  return bytes.subarray(0, bytes.length - cut);
}
