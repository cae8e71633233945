import { describe, expect, it } from 'vitest';
import {
  clientIp,
  followableUrl,
  formFields,
  MAX_TOKEN_LENGTH,
  parsedFormFields,
  tokenInUrl,
  unsubscribeMethod,
} from './tracking-request.js';

describe('tokenInUrl', () => {
  it('takes the whole raw query string', () => {
    expect(tokenInUrl('/o.z?eyJhIjoxfQ.c2lnbmF0dXJl')).toBe('eyJhIjoxfQ.c2lnbmF0dXJl');
  });

  it('ignores parameters appended after an &, and decodes a percent-encoded token', () => {
    expect(tokenInUrl('/c.z?abc.def&utm_source=gateway')).toBe('abc.def');
    expect(tokenInUrl('/c.z?abc%2Edef')).toBe('abc.def');
  });

  it('finds no token without a query, in an empty or an oversized one, or in bad percent-encoding', () => {
    expect(tokenInUrl('/o.z')).toBeUndefined();
    expect(tokenInUrl('/o.z?')).toBeUndefined();
    expect(tokenInUrl(`/o.z?${'a'.repeat(MAX_TOKEN_LENGTH + 1)}`)).toBeUndefined();
    expect(tokenInUrl('/o.z?%E0%A4%A')).toBeUndefined();
  });
});

describe('followableUrl', () => {
  it('follows http and https, encoded for a header', () => {
    expect(followableUrl('https://example.com/a?b=c&d=é')).toBe('https://example.com/a?b=c&d=%C3%A9');
    expect(followableUrl('http://example.com')).toBe('http://example.com/');
  });

  it.each([
    'javascript:alert(1)',
    'data:text/html,<script>x</script>',
    'ftp://example.com/',
    '/relative',
    'mailto:a@b.c',
  ])('refuses %s', (url) => {
    expect(followableUrl(url)).toBeUndefined();
  });
});

describe('clientIp', () => {
  it('brings IPv4-mapped IPv6 to IPv4 and keeps IPv6', () => {
    expect(clientIp('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientIp('2001:DB8::1')).toBe('2001:db8::1');
    expect(clientIp(undefined)).toBe('unknown');
  });
});

describe('unsubscribeMethod (RFC 8058)', () => {
  it('is one-click for List-Unsubscribe=One-Click as urlencoded form', () => {
    const form = formFields('application/x-www-form-urlencoded', 'List-Unsubscribe=One-Click');
    expect(unsubscribeMethod(form)).toBe('one-click');
  });

  it('is one-click for the same field in multipart/form-data', () => {
    const body = [
      '--XyZ',
      'Content-Disposition: form-data; name="List-Unsubscribe"',
      '',
      'One-Click',
      '--XyZ--',
      '',
    ].join('\r\n');
    const form = formFields('multipart/form-data; boundary="XyZ"', body);
    expect(unsubscribeMethod(form)).toBe('one-click');
    expect(unsubscribeMethod(formFields('multipart/form-data; boundary=XyZ', body))).toBe('one-click');
  });

  it('is page for an empty form, another value, or a body that is no form', () => {
    expect(unsubscribeMethod(formFields('application/x-www-form-urlencoded', ''))).toBe('page');
    expect(unsubscribeMethod(formFields('application/x-www-form-urlencoded', 'List-Unsubscribe=Yes'))).toBe(
      'page',
    );
    expect(unsubscribeMethod(formFields('application/json', '{"List-Unsubscribe":"One-Click"}'))).toBe(
      'page',
    );
    expect(unsubscribeMethod(formFields(undefined, 'List-Unsubscribe=One-Click'))).toBe('page');
  });

  it('reads a body the application has parsed already', () => {
    expect(unsubscribeMethod(parsedFormFields({ 'List-Unsubscribe': 'One-Click' }))).toBe('one-click');
    expect(unsubscribeMethod(parsedFormFields({ 'List-Unsubscribe': ['One-Click'] }))).toBe('page');
  });
});
