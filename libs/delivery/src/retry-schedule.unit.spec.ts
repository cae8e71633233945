import { describe, expect, it } from 'vitest';
import { nextAttemptAt } from './retry-schedule.js';

const MIN = 60_000;
const policy = { schedule: [1 * MIN, 5 * MIN, 15 * MIN, 30 * MIN, 60 * MIN], maxAgeMs: 48 * 60 * MIN };

describe('nextAttemptAt', () => {
  const received = new Date('2026-11-29T00:00:00Z');
  it('follows the schedule, then repeats its last step', () => {
    const now = new Date('2026-11-29T01:00:00Z');
    const waits = [1, 2, 3, 4, 5, 6, 9].map(
      (n) => (nextAttemptAt(policy, n, received, now)?.getTime() ?? 0) - now.getTime(),
    );
    expect(waits).toEqual([1, 5, 15, 30, 60, 60, 60].map((m) => m * MIN));
  });

  it('gives up once the next attempt would fall past the maximum age', () => {
    expect(nextAttemptAt(policy, 20, received, new Date('2026-11-30T23:00:00Z'))).toEqual(
      new Date('2026-12-01T00:00:00Z'),
    );
    expect(nextAttemptAt(policy, 20, received, new Date('2026-11-30T23:00:01Z'))).toBeNull();
  });
});
