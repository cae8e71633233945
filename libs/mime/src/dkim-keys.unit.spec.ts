import { createPrivateKey, createPublicKey } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { decryptPrivateKey, encryptPrivateKey, generateDkimKeys, type DkimKey } from './dkim-keys.js';

let keys: DkimKey[];
beforeAll(async () => {
  keys = await generateDkimKeys({ domain: 'shop.example', selector: 'relay1', ed25519: true });
});

describe('generateDkimKeys', () => {
  it('makes an RSA-2048 key and its TXT record', () => {
    const [rsa] = keys;
    expect(rsa?.type).toBe('rsa');
    expect(rsa?.dnsRecord).toMatchObject({ name: 'relay1._domainkey.shop.example', type: 'TXT' });
    const match = /^v=DKIM1; k=rsa; p=([A-Za-z0-9+/=]+)$/.exec(rsa?.dnsRecord.value ?? '');
    if (match === null) throw new Error(`bad record ${rsa?.dnsRecord.value}`);
    const publicKey = createPublicKey({
      key: Buffer.from(match[1] as string, 'base64'),
      format: 'der',
      type: 'spki',
    });
    expect(publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(createPrivateKey(rsa?.privateKeyPem ?? '').asymmetricKeyType).toBe('rsa');
  });

  it('makes an Ed25519 key under a selector of its own, with the bare 32-byte key in p= (RFC 8463)', () => {
    const ed = keys[1];
    expect(ed?.type).toBe('ed25519');
    expect(ed?.dnsRecord.name).toBe('relay1-ed25519._domainkey.shop.example');
    const match = /^v=DKIM1; k=ed25519; p=([A-Za-z0-9+/=]+)$/.exec(ed?.dnsRecord.value ?? '');
    expect(Buffer.from(match?.[1] ?? '', 'base64').length).toBe(32);
    expect(createPrivateKey(ed?.privateKeyPem ?? '').asymmetricKeyType).toBe('ed25519');
  });

  it('makes only the RSA key unless asked', async () => {
    expect((await generateDkimKeys({ domain: 'a.example', selector: 's' })).map((key) => key.type)).toEqual([
      'rsa',
    ]);
  });
});

describe('private key encryption', () => {
  const secret = 'dkim-key-secret-from-config';

  it('round-trips, with a fresh salt and IV every time', async () => {
    const pem = keys[0]?.privateKeyPem ?? '';
    const first = await encryptPrivateKey(pem, secret);
    const second = await encryptPrivateKey(pem, secret);
    expect(first).toMatch(/^dkimkey:v1:scrypt:16384:8:1:[\w-]+:[\w-]+:[\w-]+:[\w-]+$/);
    expect(first).not.toBe(second);
    expect(first).not.toContain('PRIVATE KEY');
    expect(await decryptPrivateKey(first, secret)).toBe(pem);
    expect(await decryptPrivateKey(second, secret)).toBe(pem);
  });

  it('refuses a wrong secret, an altered value and something else entirely', async () => {
    const encrypted = await encryptPrivateKey(keys[1]?.privateKeyPem ?? '', secret);
    await expect(decryptPrivateKey(encrypted, 'another secret')).rejects.toThrow(
      /wrong secret, or the value was altered/,
    );
    const parts = encrypted.split(':');
    const flip = (index: number): string =>
      parts
        .map((part, i) => (i === index ? `${part.slice(0, -2)}${part.endsWith('AA') ? 'AB' : 'AA'}` : part))
        .join(':');
    for (const index of [6, 7, 8, 9]) await expect(decryptPrivateKey(flip(index), secret)).rejects.toThrow();
    await expect(decryptPrivateKey(encrypted.replace(':16384:', ':32768:'), secret)).rejects.toThrow(
      /altered/,
    );
    await expect(decryptPrivateKey(encrypted.replace(':16384:', ':1073741824:'), secret)).rejects.toThrow(
      /out-of-range/,
    );
    await expect(decryptPrivateKey('-----BEGIN PRIVATE KEY-----', secret)).rejects.toThrow(
      /not an encrypted DKIM key/,
    );
    await expect(encryptPrivateKey('pem', '')).rejects.toThrow(/empty/);
  });
});
