import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * SMTP passwords are stored as `scrypt$N$r$p$salt$hash` (salt and hash in base64), so the cost can
 * be raised later and old hashes still verify. N=2^14, r=8, p=1 costs 16 MiB and ~60 ms per hash on
 * the 2-core reference machine (2^15 took ~200 ms there): slow for an attacker with the table, and
 * AccountsRepository caches successful verifications so a client that authenticates on every
 * connection does not pay it each time.
 */
const SCHEME = 'scrypt';
const DEFAULT_COST = { N: 2 ** 14, r: 8, p: 1 } as const;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Upper bounds for parameters read back from the table, so a corrupt row cannot exhaust memory. */
const MAX_LOG2_N = 20;
const MAX_R = 32;
const MAX_P = 16;

export interface ScryptCost {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

function derive(password: string, salt: Buffer, keylen: number, cost: ScryptCost): Promise<Buffer> {
  const options: ScryptOptions = {
    N: cost.N,
    r: cost.r,
    p: cost.p,
    // scrypt needs 128*N*r bytes; Node's default maxmem (32 MiB) would refuse a cost raised later.
    maxmem: 256 * cost.N * cost.r + 1024 * 1024,
  };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, keylen, options, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

/** A fresh salted hash of `password` in the self-describing format above. */
export async function hashPassword(password: string, cost: ScryptCost = DEFAULT_COST): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, KEY_BYTES, cost);
  return [SCHEME, cost.N, cost.r, cost.p, salt.toString('base64'), key.toString('base64')].join('$');
}

interface ParsedHash {
  readonly cost: ScryptCost;
  readonly salt: Buffer;
  readonly key: Buffer;
}

const isPowerOfTwo = (n: number): boolean => Number.isInteger(n) && n > 1 && (n & (n - 1)) === 0;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function parseHash(stored: string): ParsedHash | null {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== SCHEME) return null;
  const [N, r, p] = parts.slice(1, 4).map((part) => (/^\d{1,8}$/.test(part) ? Number(part) : NaN)) as [
    number,
    number,
    number,
  ];
  const [salt, key] = [parts[4] ?? '', parts[5] ?? ''];
  if (!isPowerOfTwo(N) || N > 2 ** MAX_LOG2_N || !(r >= 1 && r <= MAX_R) || !(p >= 1 && p <= MAX_P))
    return null;
  if (!BASE64.test(salt) || !BASE64.test(key)) return null;
  const keyBytes = Buffer.from(key, 'base64');
  if (keyBytes.length < 16) return null;
  return { cost: { N, r, p }, salt: Buffer.from(salt, 'base64'), key: keyBytes };
}

/**
 * True when `password` matches `stored`. The comparison is constant-time; a malformed `stored`
 * verifies nothing (it never throws, so a corrupt row reads as a wrong password).
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (!parsed) return false;
  const key = await derive(password, parsed.salt, parsed.key.length, parsed.cost);
  return timingSafeEqual(key, parsed.key);
}
