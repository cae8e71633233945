export interface AuthThrottleOptions {
  /** Failures after which each further attempt is answered more slowly. */
  readonly slowAfter: number;
  /** Failures after which the IP is refused until `lockMs` has passed. */
  readonly refuseAfter: number;
  /** Failures older than this are forgotten. */
  readonly windowMs: number;
  readonly lockMs: number;
  /** Extra delay per failure past `slowAfter`, capped at `maxDelayMs`. */
  readonly delayStepMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_AUTH_THROTTLE: AuthThrottleOptions = {
  slowAfter: 3,
  refuseAfter: 10,
  windowMs: 15 * 60_000,
  lockMs: 15 * 60_000,
  delayStepMs: 500,
  maxDelayMs: 5000,
};

/** The default policy with `refuseAfter` failures before the lock (slowing down starts earlier). */
export function authThrottlePolicy(refuseAfter: number): AuthThrottleOptions {
  return {
    ...DEFAULT_AUTH_THROTTLE,
    refuseAfter,
    slowAfter: Math.min(DEFAULT_AUTH_THROTTLE.slowAfter, refuseAfter - 1),
  };
}

interface Entry {
  failures: number;
  firstAt: number;
  lockedUntil: number;
}

/** Bounds memory when many IPs fail: the oldest entries go first. */
const MAX_TRACKED_IPS = 100_000;

/**
 * Slows down, then refuses, an IP that keeps failing AUTH (password guessing). Per process and in
 * memory: a guesser spread over several ingress processes gets a few more tries, which is fine.
 */
export class AuthThrottle {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly options: AuthThrottleOptions = DEFAULT_AUTH_THROTTLE,
    private readonly now: () => number = Date.now,
  ) {}

  isRefused(ip: string): boolean {
    const entry = this.current(ip);
    return entry !== undefined && entry.lockedUntil > this.now();
  }

  /** How long to wait before answering this IP's next AUTH. */
  delayMs(ip: string): number {
    const failures = this.current(ip)?.failures ?? 0;
    const over = failures - this.options.slowAfter;
    return over < 0 ? 0 : Math.min(this.options.maxDelayMs, (over + 1) * this.options.delayStepMs);
  }

  recordFailure(ip: string): void {
    const now = this.now();
    const entry = this.current(ip) ?? { failures: 0, firstAt: now, lockedUntil: 0 };
    entry.failures++;
    if (entry.failures >= this.options.refuseAfter) entry.lockedUntil = now + this.options.lockMs;
    this.entries.delete(ip);
    this.entries.set(ip, entry);
    if (this.entries.size > MAX_TRACKED_IPS) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }

  recordSuccess(ip: string): void {
    this.entries.delete(ip);
  }

  private current(ip: string): Entry | undefined {
    const entry = this.entries.get(ip);
    if (!entry) return undefined;
    const now = this.now();
    if (entry.lockedUntil <= now && now - entry.firstAt > this.options.windowMs) {
      this.entries.delete(ip);
      return undefined;
    }
    return entry;
  }
}
