import {
  createCipheriv,
  createDecipheriv,
  generateKeyPair,
  randomBytes,
  scrypt,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import { dkimSelectorFor, type DkimKeyType } from './dkim-sign.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface DkimKey {
  readonly type: DkimKeyType;
  readonly selector: string;
  /** PKCS#8 PEM; store it only encrypted (encryptPrivateKey). */
  readonly privateKeyPem: string;
  /** The TXT record to publish. */
  readonly dnsRecord: { readonly name: string; readonly type: 'TXT'; readonly value: string };
}

/**
 * A DKIM key pair for an account: RSA 2048 (what every verifier accepts), plus Ed25519 (RFC 8463)
 * as a second signature when asked. Each comes with its TXT record; a value longer than 255
 * characters is published as several strings of one record, which DNS providers do for you.
 */
export async function generateDkimKeys(options: {
  readonly domain: string;
  readonly selector: string;
  readonly ed25519?: boolean;
}): Promise<DkimKey[]> {
  const keys: DkimKey[] = [];
  const rsa = await generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
  keys.push(dkimKey('rsa', options, rsa.privateKey, rsa.publicKey.export({ type: 'spki', format: 'der' })));
  if (options.ed25519 === true) {
    const ed = await generateKeyPairAsync('ed25519');
    // RFC 8463 4.2: p= is the bare 32-byte public key, not its SubjectPublicKeyInfo.
    const raw = Buffer.from(ed.publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
    keys.push(dkimKey('ed25519', options, ed.privateKey, raw));
  }
  return keys;
}

function dkimKey(
  type: DkimKeyType,
  options: { readonly domain: string; readonly selector: string },
  privateKey: KeyObject,
  publicKey: Buffer,
): DkimKey {
  const selector = dkimSelectorFor(options.selector, type);
  return {
    type,
    selector,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    dnsRecord: {
      name: `${selector}._domainkey.${options.domain}`,
      type: 'TXT',
      value: `v=DKIM1; k=${type}; p=${publicKey.toString('base64')}`,
    },
  };
}

/*
 * Encrypted private keys are self-describing strings:
 *   dkimkey:v1:scrypt:<N>:<r>:<p>:<salt>:<iv>:<tag>:<ciphertext>   (binary fields base64url)
 * AES-256-GCM under a key derived from the secret (config DKIM_KEY_SECRET) with scrypt and a
 * random salt per key; the text before the salt is authenticated too, so the parameters cannot
 * be swapped. The cost parameters travel with the value, so they can be raised later.
 */
const PREFIX = 'dkimkey:v1:scrypt';
const SCRYPT = { N: 16_384, r: 8, p: 1 } as const;
const scryptAsync = promisify(scrypt) as (
  secret: string,
  salt: Buffer,
  length: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

async function derive(
  secret: string,
  salt: Buffer,
  cost: { N: number; r: number; p: number },
): Promise<Buffer> {
  if (secret.length === 0) throw new Error('the DKIM key secret is empty');
  return scryptAsync(secret, salt, 32, { ...cost, maxmem: 256 * cost.N * cost.r + 1024 * 1024 });
}

export async function encryptPrivateKey(pem: string, secret: string): Promise<string> {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const header = `${PREFIX}:${SCRYPT.N}:${SCRYPT.r}:${SCRYPT.p}`;
  const cipher = createCipheriv('aes-256-gcm', await derive(secret, salt, SCRYPT), iv);
  cipher.setAAD(Buffer.from(`${header}:${salt.toString('base64url')}`));
  const ciphertext = Buffer.concat([cipher.update(pem, 'utf8'), cipher.final()]);
  return [header, salt, iv, cipher.getAuthTag(), ciphertext]
    .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
    .join(':');
}

/** The PEM back; throws on a wrong secret or an altered value. Callers keep the result (scrypt is slow on purpose). */
export async function decryptPrivateKey(encrypted: string, secret: string): Promise<string> {
  const parts = encrypted.split(':');
  const [magic, version, kdf, n, r, p, salt, iv, tag, ciphertext] = parts;
  if (
    parts.length !== 10 ||
    `${magic}:${version}:${kdf}` !== PREFIX ||
    !salt ||
    !iv ||
    !tag ||
    ciphertext === undefined
  ) {
    throw new Error('not an encrypted DKIM key (expected dkimkey:v1:scrypt:...)');
  }
  const cost = { N: Number(n), r: Number(r), p: Number(p) };
  // Bounds keep a tampered value from asking for gigabytes of scrypt memory.
  if (!(
    cost.N >= 1024 &&
    cost.N <= 1_048_576 &&
    cost.r >= 1 &&
    cost.r <= 32 &&
    cost.p >= 1 &&
    cost.p <= 16
  )) {
    throw new Error('encrypted DKIM key has out-of-range scrypt parameters');
  }
  const saltBytes = Buffer.from(salt, 'base64url');
  const decipher = createDecipheriv(
    'aes-256-gcm',
    await derive(secret, saltBytes, cost),
    Buffer.from(iv, 'base64url'),
  );
  decipher.setAAD(Buffer.from(`${PREFIX}:${n}:${r}:${p}:${salt}`));
  try {
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString(
      'utf8',
    );
  } catch {
    throw new Error('DKIM key cannot be decrypted: wrong secret, or the value was altered');
  }
}
