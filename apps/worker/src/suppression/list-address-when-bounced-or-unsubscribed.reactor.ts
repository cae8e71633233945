import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LOGGER, type Logger } from '@relay/config';
import { createEvent, eventIdFor, type Bounced, type RelayEvent, type Unsubscribed } from '@relay/domain';
import { EVENT_LOG, type EventLog, type LoggedEvent, type Subscription } from '@relay/event-log';
import { NotificationsRepository } from '../notifier/notifications.repository.js';

/**
 * A hard bounce whose status says the address is invalid (RFC 3463 5.1.x: bad mailbox, no such
 * domain), whether from the SMTP reply or a DSN. Soft bounces (mailbox full, policy) and other
 * hard ones (content, relaying) say nothing about the address and do not list it.
 */
export const meansInvalidAddress = (bounced: Bounced): boolean =>
  bounced.data.bounceClass === 'hard' && bounced.data.status.startsWith('5.1.');

/** The SuppressionAdded an event leads to, if any; its id derives from the cause. */
export function listingFor(event: RelayEvent): RelayEvent | undefined {
  if (event.type === 'Bounced' && meansInvalidAddress(event))
    return listing(event, 'bounce', event.data.diagnostic);
  if (event.type === 'Unsubscribed')
    return listing(event, 'unsubscribe', `unsubscribed (${event.data.method})`);
  return undefined;
}

function listing(cause: Bounced | Unsubscribed, list: 'bounce' | 'unsubscribe', reason: string): RelayEvent {
  return createEvent('SuppressionAdded', {
    id: eventIdFor(cause.id, 'listed'),
    accountId: cause.accountId,
    ...(cause.messageId ? { messageId: cause.messageId } : {}),
    causationId: cause.id,
    data: { address: cause.data.recipient, list, source: list, reason },
  });
}

/**
 * Puts addresses on the account's lists by themselves (consumer group `suppression-intake`):
 * invalid recipients on the Bounce list, unsubscribers on the Unsubscribe list.
 */
@Injectable()
export class ListAddressWhenBouncedOrUnsubscribedReactor
  implements OnApplicationBootstrap, OnApplicationShutdown
{
  private subscription?: Subscription;

  constructor(
    @Inject(EVENT_LOG) private readonly eventLog: EventLog,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly notifications: NotificationsRepository,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.subscription = await this.eventLog.subscribe({
      group: 'suppression-intake',
      types: ['Bounced', 'Unsubscribed'],
      handle: (batch) => this.handle(batch),
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.subscription?.stop();
  }

  private async handle(batch: readonly LoggedEvent[]): Promise<void> {
    const listings: RelayEvent[] = [];
    // A notification that bounces names the sender's own address: that is no reason to list it.
    const bouncedIds = batch.flatMap(({ event }) =>
      event.type === 'Bounced' && event.messageId ? [event.messageId] : [],
    );
    const notifications =
      bouncedIds.length > 0 ? await this.notifications.notificationIds(bouncedIds) : new Set();
    for (const { event } of batch) {
      if (event.messageId && notifications.has(event.messageId)) continue;
      const added = listingFor(event);
      if (added?.type !== 'SuppressionAdded') continue;
      listings.push(added);
      this.logger.info('address listed', {
        accountId: added.accountId,
        messageId: added.messageId,
        address: added.data.address,
        list: added.data.list,
        reason: added.data.reason,
      });
    }
    if (listings.length > 0) await this.eventLog.append(listings);
  }
}
