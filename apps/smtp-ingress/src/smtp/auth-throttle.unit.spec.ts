import { describe, expect, it } from 'vitest';
import { AuthThrottle, DEFAULT_AUTH_THROTTLE } from './auth-throttle.js';

describe('AuthThrottle', () => {
  it('slows down after a few failures, then refuses for the lock period', () => {
    let now = 1_000_000;
    const throttle = new AuthThrottle(DEFAULT_AUTH_THROTTLE, () => now);
    const ip = '192.0.2.7';
    for (let i = 0; i < 3; i++) throttle.recordFailure(ip);
    expect(throttle.delayMs(ip)).toBe(500);
    throttle.recordFailure(ip);
    expect(throttle.delayMs(ip)).toBe(1000);
    expect(throttle.isRefused(ip)).toBe(false);
    for (let i = 0; i < 6; i++) throttle.recordFailure(ip);
    expect(throttle.isRefused(ip)).toBe(true);
    expect(throttle.delayMs('192.0.2.8')).toBe(0);
    now += DEFAULT_AUTH_THROTTLE.lockMs + 1;
    expect(throttle.isRefused(ip)).toBe(false);
    expect(throttle.delayMs(ip)).toBe(0);
  });

  it('forgets failures after a success', () => {
    const throttle = new AuthThrottle();
    for (let i = 0; i < 5; i++) throttle.recordFailure('198.51.100.1');
    throttle.recordSuccess('198.51.100.1');
    expect(throttle.delayMs('198.51.100.1')).toBe(0);
  });
});
