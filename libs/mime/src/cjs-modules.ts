import { createRequire } from 'node:module';
import type { Transform } from 'node:stream';

/*
 * The CommonJS libraries this lib builds on ship no types (mailsplit, libqp, the
 * mailauth internals), so they are loaded here once and given the narrow types this lib uses.
 * Versions are pinned in the root package.json; the mailauth internals are those of 4.13.3.
 */
const require = createRequire(import.meta.url);

/** A MIME node as mailsplit's Splitter emits it (lib/mime-node.js). */
export interface MimeNode {
  readonly type: 'node';
  readonly root: boolean;
  /** True for a message/rfc822 node whose content follows as nodes of its own. */
  readonly messageNode?: boolean;
  readonly parentNode: MimeNode | false;
  /** The multipart subtype ("mixed", "alternative"...), false for a leaf. */
  readonly multipart: string | false;
  /** Content-Transfer-Encoding, lower-cased, '' when the header is absent. */
  readonly encoding: string;
  readonly contentType: string | false;
  readonly charset: string | false;
  readonly disposition: string | false;
  readonly flowed: boolean;
  readonly delSp: boolean;
  readonly headers: { get(key: string): string[] };
  /** The header block exactly as received (blank line included) while no header was changed. */
  getHeaders(): Buffer;
}

/** Body bytes of a leaf ('body') or anything else between headers: boundaries, preamble, epilogue ('data'). */
export interface MimeChunk {
  readonly type: 'body' | 'data';
  readonly node: MimeNode;
  readonly value?: Buffer;
}

export type SplitterObject = MimeNode | MimeChunk;

interface SplitterOptions {
  /** Split a 7bit/8bit message/rfc822 part into its own nodes unless it is an attachment. */
  readonly defaultInlineEmbedded?: boolean;
  readonly maxHeadSize?: number;
  readonly maxChildNodes?: number;
}

const mailsplit = require('mailsplit') as { Splitter: new (options?: SplitterOptions) => Transform };
export const Splitter = mailsplit.Splitter;

/** mailsplit's quoted-printable codec; the tests cross-check this lib's own (faster) one against it. */
export const libqp = require('libqp') as {
  encode(input: Buffer): string;
  decode(input: string): Buffer;
  wrap(input: string, lineLength: number): string;
};

/*
 * Charset conversion uses the iconv-lite and encoding-japanese that libmime (mailsplit's MIME
 * helper) depends on, resolved from libmime's own location: the root node_modules may hold a
 * different iconv-lite for other packages.
 */
const libmimeRequire = createRequire(require.resolve('libmime'));

export const iconv = libmimeRequire('iconv-lite') as {
  decode(input: Buffer, charset: string): string;
  encode(input: string, charset: string): Buffer;
  encodingExists(charset: string): boolean;
};

export const encodingJapanese = libmimeRequire('encoding-japanese') as {
  convert(data: ArrayLike<number>, options: { to: string; from: string }): number[];
  stringToCode(input: string): number[];
  codeToString(codes: ArrayLike<number>): string;
};

/** A header row as mailauth parses it (lib/tools.js parseHeaders). */
export interface MailauthHeaderRow {
  readonly key: string | null;
  readonly casedKey: string | undefined;
  readonly line: Buffer;
}

export interface MailauthSigningLines {
  readonly keys: string;
  readonly headers: readonly MailauthHeaderRow[];
}

export const mailauthTools = require('mailauth/lib/tools.js') as {
  parseHeaders(block: Buffer): { parsed: MailauthHeaderRow[] };
  /** Rows of the listed fields present in the header, bottom-up; `fieldNames` is colon-separated. */
  getSigningHeaderLines(parsed: MailauthHeaderRow[], fieldNames: string): MailauthSigningLines;
  formatSignatureHeaderLine(type: 'DKIM', values: Record<string, unknown>, folded: boolean): string;
};

export const mailauthHeader = require('mailauth/lib/dkim/header/index.js') as {
  generateCanonicalizedHeader(
    type: 'DKIM',
    lines: MailauthSigningLines,
    options: {
      readonly signingDomain: string;
      readonly selector: string;
      readonly algorithm: string;
      readonly canonicalization: string;
      readonly bodyHash: string;
      readonly signTime: Date;
    },
  ): { canonicalizedHeader: Buffer; dkimHeaderOpts: Record<string, unknown> };
};

export interface DkimBodyHasher {
  update(chunk: Buffer): void;
  digest(encoding: 'base64'): string;
}

export const mailauthBody = require('mailauth/lib/dkim/body/index.js') as {
  dkimBody(canonicalization: 'relaxed' | 'simple', algorithm: 'sha256', maxBodyLength: false): DkimBodyHasher;
};
