import { createHash, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { mailauthBody, mailauthHeader, mailauthTools, type DkimBodyHasher } from './cjs-modules.js';

/** The fields signed when present (DESIGN.md; List-Unsubscribe-Post per RFC 8058 section 4). */
export const DKIM_SIGNED_FIELDS = [
  'From',
  'To',
  'Cc',
  'Subject',
  'Date',
  'Message-ID',
  'MIME-Version',
  'Content-Type',
  'List-Unsubscribe',
  'List-Unsubscribe-Post',
] as const;

const CANONICALIZATION = 'relaxed/relaxed';

export type DkimKeyType = 'rsa' | 'ed25519';

/**
 * The selector a key of `type` is published under. An RSA and an Ed25519 key cannot share one
 * DNS name (a verifier would get both records), so the Ed25519 key of an account whose selector
 * is `s1` lives at `s1-ed25519._domainkey.<domain>` (RFC 8463 signs with both, under two names).
 */
export function dkimSelectorFor(selector: string, type: DkimKeyType): string {
  return type === 'rsa' ? selector : `${selector}-ed25519`;
}

export interface DkimSigning {
  readonly domain: string;
  /** The account's selector; see dkimSelectorFor for the Ed25519 one. */
  readonly selector: string;
  /** PEM private keys (decrypted): one RSA key, and optionally an Ed25519 key. */
  readonly privateKeys: readonly string[];
}

/** Relaxed body hash, fed as the body streams past (mailauth's canonicalisation). */
export function createDkimBodyHasher(): DkimBodyHasher {
  return mailauthBody.dkimBody('relaxed', 'sha256', false);
}

/*
 * Parsing a PEM key costs more than signing with it (about 2 ms for RSA-2048 with OpenSSL 3,
 * which mailauth's signer pays on every message); the parsed keys are kept, a bounded few.
 */
const KEY_CACHE_LIMIT = 512;
const keyCache = new Map<string, KeyObject>();

function privateKeyObject(pem: string): KeyObject {
  let key = keyCache.get(pem);
  if (key === undefined) {
    key = createPrivateKey(pem);
    if (keyCache.size >= KEY_CACHE_LIMIT) {
      const oldest = keyCache.keys().next();
      if (oldest.done !== true) keyCache.delete(oldest.value);
    }
    keyCache.set(pem, key);
  }
  return key;
}

/**
 * The DKIM-Signature fields (CRLF-terminated, one per key, each named "<d>/<s>/<a>" in `signatures`) for a message with this root header
 * block and relaxed body hash. Canonicalisation and the field's format are mailauth's (the same
 * code its signer and verifier run); only the key handling is ours.
 */
export function dkimSignatureFields(
  headerBlock: Buffer,
  bodyHash: string,
  signing: DkimSigning,
  signTime: Date,
): { readonly fields: string; readonly signatures: readonly string[] } {
  const { parsed } = mailauthTools.parseHeaders(headerBlock);
  const lines = mailauthTools.getSigningHeaderLines(parsed, DKIM_SIGNED_FIELDS.join(':'));
  let fields = '';
  const signatures: string[] = [];
  for (const pem of signing.privateKeys) {
    const key = privateKeyObject(pem);
    const type = key.asymmetricKeyType;
    if (type !== 'rsa' && type !== 'ed25519')
      throw new Error(`DKIM key type ${String(type)} is not supported`);
    const selector = dkimSelectorFor(signing.selector, type);
    const { canonicalizedHeader, dkimHeaderOpts } = mailauthHeader.generateCanonicalizedHeader(
      'DKIM',
      lines,
      {
        signingDomain: signing.domain,
        selector,
        algorithm: `${type}-sha256`,
        canonicalization: CANONICALIZATION,
        bodyHash,
        // Set explicitly: mailauth otherwise takes "now" twice (canonical form and final field),
        // and a second boundary between the two would break the signature.
        signTime,
      },
    );
    // RFC 8463 3: Ed25519 signs the SHA-256 of the canonical header; RSA signs it with SHA-256.
    const signature =
      type === 'rsa'
        ? sign('sha256', canonicalizedHeader, key)
        : sign(null, createHash('sha256').update(canonicalizedHeader).digest(), key);
    fields += `${mailauthTools.formatSignatureHeaderLine('DKIM', { ...dkimHeaderOpts, b: signature.toString('base64') }, true)}\r\n`;
    signatures.push(`${signing.domain}/${selector}/${type}-sha256`);
  }
  return { fields, signatures };
}
