import { describe, expect, it } from 'vitest';
import {
  authoriseSender,
  invalidAllowedFromEntries,
  normaliseDomain,
  parseAllowedFromEntry,
} from './sender-authorisation.js';

describe('parseAllowedFromEntry', () => {
  it.each([
    ['*', { kind: 'any' }],
    ['@Example.COM', { kind: 'domain', domain: 'example.com' }],
    ['@example.com.', { kind: 'domain', domain: 'example.com' }],
    ['@bücher.example', { kind: 'domain', domain: 'xn--bcher-kva.example' }],
    ['Alice@Example.com', { kind: 'address', localPart: 'Alice', domain: 'example.com' }],
    ['first.last+tag@example.com', { kind: 'address', localPart: 'first.last+tag', domain: 'example.com' }],
    ['"a@b"@example.com', { kind: 'address', localPart: '"a@b"', domain: 'example.com' }],
    ['josé@example.com', { kind: 'address', localPart: 'josé', domain: 'example.com' }],
  ])('accepts %s', (entry, parsed) => {
    expect(parseAllowedFromEntry(entry)).toEqual(parsed);
  });

  it.each([
    '',
    '**',
    '*@example.com',
    '@',
    'example.com',
    '@exa mple.com',
    '@-example.com',
    '@example..com',
    'alice@',
    '@alice@example.com',
    'al ice@example.com',
    '.alice@example.com',
    'alice.@example.com',
    '<alice@example.com>',
    `${'a'.repeat(65)}@example.com`,
  ])('refuses %j', (entry) => {
    expect(parseAllowedFromEntry(entry)).toBeNull();
  });

  it('lists the invalid entries of a list', () => {
    expect(invalidAllowedFromEntries(['*', 'nope', '@example.com', 'a@'])).toEqual(['nope', 'a@']);
  });
});

describe('normaliseDomain', () => {
  it('lower-cases, drops the root dot and converts IDNs to ASCII', () => {
    expect(normaliseDomain('Mail.Example.ORG.')).toBe('mail.example.org');
    expect(normaliseDomain('BÜCHER.example')).toBe('xn--bcher-kva.example');
    expect(normaliseDomain('exa_mple.com')).toBeNull();
  });
});

describe('authoriseSender', () => {
  it('lets any address through with *', () => {
    expect(authoriseSender(['*'], 'anyone@anywhere.example')).toEqual({ allowed: true, matched: '*' });
  });

  it('matches @domain case-insensitively, but not its subdomains', () => {
    expect(authoriseSender(['@example.com'], 'bob@EXAMPLE.com')).toEqual({
      allowed: true,
      matched: '@example.com',
    });
    expect(authoriseSender(['@example.com'], 'bob@mail.example.com')).toEqual({
      allowed: false,
      reason: 'not-in-allowed-from',
    });
  });

  it('matches an exact address: the domain in any case, the local part as written', () => {
    const allowed = ['Alice@Example.com'];
    expect(authoriseSender(allowed, 'Alice@example.COM')).toEqual({
      allowed: true,
      matched: 'Alice@Example.com',
    });
    expect(authoriseSender(allowed, 'alice@example.com')).toEqual({
      allowed: false,
      reason: 'not-in-allowed-from',
    });
    expect(authoriseSender(allowed, 'Alice@other.example')).toEqual({
      allowed: false,
      reason: 'not-in-allowed-from',
    });
  });

  it('matches IDN domains in either form', () => {
    expect(authoriseSender(['@bücher.example'], 'info@xn--bcher-kva.example').allowed).toBe(true);
    expect(authoriseSender(['@xn--bcher-kva.example'], 'info@BÜCHER.example').allowed).toBe(true);
  });

  it('names the first entry that matched', () => {
    expect(authoriseSender(['@example.com', '*'], 'a@example.com')).toEqual({
      allowed: true,
      matched: '@example.com',
    });
  });

  it('ignores invalid entries rather than letting them match', () => {
    expect(authoriseSender(['example.com', '@'], 'a@example.com')).toEqual({
      allowed: false,
      reason: 'not-in-allowed-from',
    });
  });

  it.each(['', 'no-at-sign', '@example.com', 'a@', 'a b@example.com'])(
    'refuses the malformed From %j',
    (from) => {
      expect(authoriseSender(['*'], from)).toEqual({ allowed: false, reason: 'invalid-address' });
    },
  );

  it('refuses everything with an empty list', () => {
    expect(authoriseSender([], 'a@example.com')).toEqual({ allowed: false, reason: 'not-in-allowed-from' });
  });
});
