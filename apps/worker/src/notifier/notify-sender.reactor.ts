import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LOGGER, type Logger } from '@relay/config';
import { EVENT_LOG, type EventLog, type LoggedEvent, type Subscription } from '@relay/event-log';
import { AccountsRepository } from '@relay/persistence';
import { NotificationMailer } from './notification-mailer.js';
import { NotificationsRepository } from './notifications.repository.js';
import {
  decideNotification,
  groupByMessage,
  isNotifierCause,
  messageIdOf,
  type NotifierCause,
  type NotifierFacts,
  type SenderNotification,
} from './sender-notification.decide.js';

/** A recorded notification not queued after this long lost its handler (a crash in between). */
const REQUEUE_AFTER_MS = 60_000;
const REQUEUE_EVERY_MS = 30_000;

/**
 * The notifier (consumer group `notifier`): mails the sender when the relay did not deliver, as
 * an RFC 3464 report. Suppressed (Bounce list: to the envelope sender; Unsubscribe list: to the
 * From address), RelayDenied of a known account's From, QuotaExceeded, and Bounced when the
 * account asks for it. One report per message, reason and notified address in a batch; each
 * (message, recipient, reason) is notified once however often its event is delivered.
 */
@Injectable()
export class NotifySenderReactor implements OnApplicationBootstrap, OnApplicationShutdown {
  private subscription?: Subscription;
  private requeueTimer?: NodeJS.Timeout;

  constructor(
    @Inject(EVENT_LOG) private readonly eventLog: EventLog,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(AccountsRepository) private readonly accounts: AccountsRepository,
    private readonly notifications: NotificationsRepository,
    private readonly mailer: NotificationMailer,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.subscription = await this.eventLog.subscribe({
      group: 'notifier',
      types: ['Suppressed', 'RelayDenied', 'QuotaExceeded', 'Bounced'],
      handle: (batch) => this.handle(batch),
    });
    this.requeueTimer = setInterval(() => void this.requeue(), REQUEUE_EVERY_MS);
    void this.requeue();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.requeueTimer);
    await this.subscription?.stop();
  }

  private async handle(batch: readonly LoggedEvent[]): Promise<void> {
    const causes = batch.map((l) => l.event).filter(isNotifierCause);
    if (causes.length === 0) return;
    const facts = await this.factsFor(causes);
    const notifications: SenderNotification[] = [];
    for (const event of causes) {
      const decision = decideNotification(event, facts);
      if (decision.notify) {
        notifications.push(decision.notification);
        continue;
      }
      this.logger.info('no notification', {
        messageId: messageIdOf(event),
        accountId: event.accountId,
        event: event.type,
        reason: decision.why,
      });
    }
    // One at a time: a batch is one partition's events in order, and reports are few.
    for (const notification of groupByMessage(notifications)) await this.mailer.send(notification);
  }

  private async factsFor(causes: readonly NotifierCause[]): Promise<NotifierFacts> {
    const bounced = causes.flatMap((e) =>
      e.type === 'Bounced' ? [{ messageId: messageIdOf(e), recipient: e.data.recipient }] : [],
    );
    const bouncedAccounts = new Set(
      causes.flatMap((e) => (e.type === 'Bounced' && e.accountId !== null ? [e.accountId] : [])),
    );
    const [notificationIds, originals, bounceNotificationAccounts] = await Promise.all([
      this.notifications.notificationIds(causes.map(messageIdOf)),
      this.notifications.originals(bounced),
      this.accountsAskingForBounces(bouncedAccounts),
    ]);
    return { notificationIds, originals, bounceNotificationAccounts };
  }

  /** Read per batch, so turning the setting on or off takes effect at the next bounce. */
  private async accountsAskingForBounces(accountIds: ReadonlySet<string>): Promise<Set<string>> {
    const accounts = await Promise.all([...accountIds].map((id) => this.accounts.get(id)));
    return new Set(accounts.flatMap((a) => (a?.bounceNotifications ? [a.id] : [])));
  }

  private async requeue(): Promise<void> {
    try {
      await this.mailer.requeueUnqueued(REQUEUE_AFTER_MS);
    } catch (error) {
      this.logger.warn('requeueing notifications failed', { error });
    }
  }
}
