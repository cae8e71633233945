import { describe, expect, it } from 'vitest';
import { normaliseClientIp, parseCidr } from './ip-address.js';

describe('normaliseClientIp', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::FFFF:10.1.2.3', '10.1.2.3'],
    ['::ffff:7f00:1', '127.0.0.1'],
    ['[::ffff:192.0.2.1]', '192.0.2.1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['::1', '::1'],
  ])('%s -> %s', (ip, normalised) => {
    expect(normaliseClientIp(ip)).toBe(normalised);
  });

  it.each(['', 'localhost', '1.2.3', '::ffff:1.2.3.256', '1.2.3.4/32'])('refuses %j', (ip) => {
    expect(normaliseClientIp(ip)).toBeNull();
  });
});

describe('parseCidr', () => {
  it.each([
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['192.0.2.7', '192.0.2.7/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['2001:DB8::/32', '2001:db8::/32'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1/128'],
    ['::/0', '::/0'],
    ['::ffff:10.0.0.0/104', '10.0.0.0/8'],
    ['::ffff:192.0.2.7', '192.0.2.7/32'],
  ])('accepts %s as %s', (text, cidr) => {
    expect(parseCidr(text)).toEqual({ ok: true, cidr });
  });

  it('refuses host bits after the prefix and names the network meant', () => {
    expect(parseCidr('10.1.2.3/8')).toEqual({
      ok: false,
      reason: '"10.1.2.3/8" has host bits set after the /8 prefix (did you mean 10.0.0.0/8?)',
    });
    expect(parseCidr('2001:db8::1/32')).toEqual({
      ok: false,
      reason: '"2001:db8::1/32" has host bits set after the /32 prefix (did you mean 2001:db8::/32?)',
    });
  });

  it.each([
    ['10.0.0.0/33', '"10.0.0.0/33" has a prefix longer than 32 bits'],
    ['::/129', '"::/129" has a prefix longer than 128 bits'],
    ['10.0.0/8', '"10.0.0/8" is not an IP address or CIDR'],
    ['example.com', '"example.com" is not an IP address or CIDR'],
    ['10.0.0.0/', '"10.0.0.0/" is not an IP address or CIDR'],
    ['10.0.0.0/8/8', '"10.0.0.0/8/8" is not an IP address or CIDR'],
  ])('refuses %s', (text, reason) => {
    expect(parseCidr(text)).toEqual({ ok: false, reason });
  });
});
