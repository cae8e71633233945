export interface RetryPolicy {
  /** Waits after the 1st, 2nd, ... failed attempt; the last one repeats. */
  readonly schedule: readonly number[];
  /** Past this age (from acceptance) a recipient stops being retried and bounces as expired. */
  readonly maxAgeMs: number;
}

/**
 * When to try again after `attempts` failed attempts, or null when the message is too old for
 * another try: the next attempt would fall after receivedAt + maxAge.
 */
export function nextAttemptAt(
  policy: RetryPolicy,
  attempts: number,
  receivedAt: Date,
  now: Date,
): Date | null {
  const waits = policy.schedule;
  const wait = waits[Math.min(attempts, waits.length) - 1] ?? waits[waits.length - 1] ?? 60_000;
  const next = new Date(now.getTime() + wait);
  return next.getTime() > receivedAt.getTime() + policy.maxAgeMs ? null : next;
}
