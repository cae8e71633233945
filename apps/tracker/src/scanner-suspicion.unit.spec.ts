import { describe, expect, it } from 'vitest';
import { suspectScanner } from './scanner-suspicion.js';

const BROWSER =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1.15';
const at = new Date('2026-01-10T12:00:00.000Z');
const secondsBefore = (s: number): Date => new Date(at.getTime() - s * 1000);

describe('suspectScanner', () => {
  it('lets a browser GET long after delivery pass', () => {
    expect(suspectScanner({ method: 'GET', userAgent: BROWSER, at, deliveredAt: secondsBefore(60) })).toBe(
      undefined,
    );
    expect(suspectScanner({ method: 'GET', userAgent: BROWSER, at })).toBe(undefined);
  });

  it('flags a HEAD request whatever the user agent', () => {
    expect(suspectScanner({ method: 'HEAD', userAgent: BROWSER, at })).toBe('head-request');
  });

  it('flags a hit within a second of delivery, and one timed before it (clock skew)', () => {
    expect(suspectScanner({ method: 'GET', userAgent: BROWSER, at, deliveredAt: secondsBefore(0.4) })).toBe(
      'right-after-delivery',
    );
    expect(suspectScanner({ method: 'GET', userAgent: BROWSER, at, deliveredAt: secondsBefore(-2) })).toBe(
      'right-after-delivery',
    );
    expect(suspectScanner({ method: 'GET', userAgent: BROWSER, at, deliveredAt: secondsBefore(1) })).toBe(
      undefined,
    );
  });

  it.each([
    'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
    'Barracuda Sentinel (EE)',
    'python-requests/2.31.0',
    'curl/8.5.0',
    'Go-http-client/1.1',
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36',
  ])('flags the user agent %s', (userAgent) => {
    expect(suspectScanner({ method: 'GET', userAgent, at })).toBe('scanner-user-agent');
  });

  it('flags a request without a user agent', () => {
    expect(suspectScanner({ method: 'GET', userAgent: '  ', at })).toBe('no-user-agent');
  });

  it('does not take a phone model ending in "bot" for a crawler', () => {
    const cubot =
      'Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36';
    expect(suspectScanner({ method: 'GET', userAgent: cubot, at })).toBe(undefined);
  });
});
