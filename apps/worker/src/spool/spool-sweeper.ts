import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LOGGER, RELAY_CONFIG, type Logger, type RelayConfig } from '@relay/config';
import { SPOOL, type Spool } from '@relay/spool';

const SWEEP_INTERVAL_MS = 3_600_000;

/**
 * Removes message bodies accepted more than SPOOL_RETENTION ago, at start and then hourly.
 * SPOOL_RETENTION is at least DELIVERY_MAX_AGE and the resend window (the config refuses less),
 * so by then every recipient of the message is final (delivered, bounced or expired) and held
 * mail can no longer be resent: nothing still needs the body. Workers sweeping at once are
 * harmless: a body removed by another counts as gone.
 */
@Injectable()
export class SpoolSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer?: NodeJS.Timeout;
  private sweeping?: Promise<void>;

  constructor(
    @Inject(RELAY_CONFIG) private readonly config: RelayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(SPOOL) private readonly spool: Spool,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS);
    this.timer.unref();
    void this.sweep();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping;
  }

  /** One sweep at a time; a call during a sweep shares it. Never rejects: failures are logged. */
  sweep(now: Date = new Date()): Promise<void> {
    this.sweeping ??= this.removeExpired(now).finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  private async removeExpired(now: Date): Promise<void> {
    const cutoff = new Date(now.getTime() - this.config.spoolRetention);
    try {
      const removed = await this.spool.removeOlderThan(cutoff);
      if (removed > 0) this.logger.info('spool sweep', { removed, before: cutoff.toISOString() });
    } catch (error) {
      this.logger.warn('spool sweep failed; the next one retries', { error });
    }
  }
}
