import { Inject, Injectable } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { RELAY_CONFIG, trackingKey, type RelayConfig } from '@relay/config';
import { renderMessage } from '@relay/mime';
import { SPOOL, type Spool } from '@relay/spool';
import type { QueuedRecipient } from './delivery-queue.repository.js';
import { RENDER_SETTINGS, type RenderSettings, type RenderSettingsLookup } from './render-settings.port.js';

/** How one delivery task's body is produced. */
export interface RenderPlan {
  /**
   * True when each recipient gets a copy of its own (tracking tokens, the unsubscribe link): the
   * task then goes out as one transaction per recipient instead of one per domain.
   */
  readonly perRecipient: boolean;
  /** Opens the body for `recipient` (any recipient of the task when not per recipient). */
  open(recipient: string): Promise<Readable>;
}

/**
 * Renders what the delivery stage sends: the spooled body rewritten for the account (wrapping,
 * tracking, unsubscribe link) and signed with its DKIM key(s) last. The relay's own notifications
 * (null return path) go out as spooled: never tracked, never signed with the account's domain.
 */
@Injectable()
export class MessageRenderer {
  private key?: Promise<string>;

  constructor(
    @Inject(RELAY_CONFIG) private readonly config: RelayConfig,
    @Inject(SPOOL) private readonly spool: Spool,
    @Inject(RENDER_SETTINGS) private readonly settings: RenderSettingsLookup,
  ) {}

  async plan(first: QueuedRecipient): Promise<RenderPlan> {
    const raw = { perRecipient: false, open: () => this.spool.read(first.spoolKey) };
    if (first.returnPath === '') return raw;
    const settings = await this.settings.get(first.accountId);
    if (!settings) return raw;
    const key = await (this.key ??= trackingKey(this.config));
    const perRecipient = settings.tracking.opens || settings.tracking.clicks || settings.listUnsubscribe;
    return {
      perRecipient,
      open: async (recipient) =>
        renderMessage(await this.spool.read(first.spoolKey), this.options(first, recipient, settings, key)),
    };
  }

  private options(first: QueuedRecipient, recipient: string, settings: RenderSettings, key: string) {
    return {
      accountId: first.accountId,
      messageId: first.messageId,
      recipient,
      wrapWidth: settings.wrapWidth,
      tracking: {
        opens: settings.tracking.opens,
        clicks: settings.tracking.clicks,
        trackUrlTextLinks: settings.tracking.urlTextLinks,
      },
      listUnsubscribe: settings.listUnsubscribe,
      trackingBaseUrl: settings.trackingDomain
        ? `https://${settings.trackingDomain}`
        : this.config.trackingBaseUrl,
      trackingKey: key,
      ...(settings.dkim
        ? {
            dkim: {
              domain: settings.dkim.domain,
              selector: settings.dkim.selector,
              privateKeys: settings.dkim.privateKeys,
            },
          }
        : {}),
    };
  }
}
