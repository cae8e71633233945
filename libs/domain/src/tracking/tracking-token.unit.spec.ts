import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signTrackingToken, verifyTrackingToken, type TrackingClaims } from './tracking-token.js';

const key = 'k'.repeat(32);
const click: TrackingClaims = {
  kind: 'c',
  accountId: 'acct',
  messageId: 'm1',
  recipient: 'ann@example.org',
  url: 'https://example.com/a?b=c&d=é',
};

describe('tracking tokens', () => {
  it('round-trips every kind', () => {
    for (const claims of [click, { ...click, kind: 'o' as const }, { ...click, kind: 'u' as const }]) {
      const { url: _url, ...withoutUrl } = claims as TrackingClaims & { url?: string };
      const expected = claims.kind === 'c' ? claims : withoutUrl;
      expect(verifyTrackingToken(signTrackingToken(claims, key), key)).toEqual(expected);
    }
  });

  it('is URL-safe as it is', () => {
    expect(signTrackingToken(click, key)).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  });

  it('refuses an altered payload, a forged tag, another key and garbage', () => {
    const token = signTrackingToken(click, key);
    const [payload, tag] = token.split('.') as [string, string];
    const altered = Buffer.from(
      Buffer.from(payload, 'base64url').toString().replace('example.com', 'evil.example'),
    ).toString('base64url');
    expect(verifyTrackingToken(`${altered}.${tag}`, key)).toBeNull();
    expect(verifyTrackingToken(`${payload}.${'A'.repeat(tag.length)}`, key)).toBeNull();
    expect(verifyTrackingToken(token, 'another key')).toBeNull();
    for (const bad of ['', '.', 'abc', 'a.b.c', `${payload}.`])
      expect(verifyTrackingToken(bad, key)).toBeNull();
  });
});

describe('tracking token MAC', () => {
  it('is the first 16 octets of HMAC-SHA256 over the payload, whichever key was used before', () => {
    const claims = { kind: 'o', accountId: 'acc', messageId: 'm1', recipient: 'a@example.org' } as const;
    for (const key of ['key-one', Buffer.from('key-two'), 'key-one', Buffer.from('key-two'), 'käy']) {
      const token = signTrackingToken(claims, key);
      const [payload, mac] = token.split('.') as [string, string];
      const expected = createHmac('sha256', key).update(payload).digest().subarray(0, 16);
      expect(Buffer.from(mac, 'base64url').equals(expected)).toBe(true);
      expect(verifyTrackingToken(token, key)).toEqual(claims);
      expect(verifyTrackingToken(token, 'another-key')).toBeNull();
    }
  });
});
