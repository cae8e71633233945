import { describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from './password-hash.js';

/** A cheap cost for the cases that do not measure the default. */
const FAST = { N: 2 ** 10, r: 8, p: 1 };

describe('password hashes', () => {
  it('stores scrypt$N$r$p$salt$hash with the default cost, a 16-byte salt and a 32-byte hash', async () => {
    const stored = await hashPassword('correct horse');
    const [scheme, n, r, p, salt, hash] = stored.split('$');
    expect([scheme, n, r, p]).toEqual(['scrypt', '16384', '8', '1']);
    expect(Buffer.from(salt ?? '', 'base64')).toHaveLength(16);
    expect(Buffer.from(hash ?? '', 'base64')).toHaveLength(32);
    expect(await verifyPassword('correct horse', stored)).toBe(true);
    expect(await verifyPassword('correct horse ', stored)).toBe(false);
  });

  it('salts every hash: the same password hashes differently each time', async () => {
    const [a, b] = await Promise.all([hashPassword('same', FAST), hashPassword('same', FAST)]);
    expect(a).not.toBe(b);
    expect(await verifyPassword('same', a)).toBe(true);
    expect(await verifyPassword('same', b)).toBe(true);
  });

  it('verifies with the cost written in the hash, not today’s default', async () => {
    const stored = await hashPassword('pw', FAST);
    expect(stored.startsWith('scrypt$1024$8$1$')).toBe(true);
    expect(await verifyPassword('pw', stored)).toBe(true);
    expect(await verifyPassword('PW', stored)).toBe(false);
  });

  it('treats composed and decomposed Unicode alike (NFC)', async () => {
    const stored = await hashPassword('caf\u00e9', FAST);
    expect(await verifyPassword('cafe\u0301', stored)).toBe(true);
  });

  it.each([
    '',
    'bcrypt$2b$10$abc',
    'scrypt$1000$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==',
    'scrypt$2097152$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==',
    'scrypt$1024$0$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==',
    'scrypt$1024$8$1$c2FsdA==$!!',
    'scrypt$1024$8$1$c2FsdA==$aGFzaA==',
    'scrypt$1024$8$1$c2FsdA==',
  ])('verifies nothing against the malformed hash %j, without throwing', async (stored) => {
    expect(await verifyPassword('anything', stored)).toBe(false);
  });

  it('takes tens of milliseconds at the default cost', async () => {
    const stored = await hashPassword('timing');
    const started = performance.now();
    await verifyPassword('timing', stored);
    expect(performance.now() - started).toBeGreaterThan(10);
  });
});
