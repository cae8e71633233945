import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LOGGER, type Logger } from '@relay/config';
import { createEvent, eventIdFor, type MessageReceived, type RelayEvent } from '@relay/domain';
import { EVENT_LOG, type EventLog, type LoggedEvent, type Subscription } from '@relay/event-log';

/** `YYYY-MM` of a time, in UTC: the quota period a recipient counts against. */
export const periodOf = (at: Date): string => at.toISOString().slice(0, 7);

/**
 * The policy stage (consumer group `policy`). For now every recipient of a MessageReceived is
 * cleared for delivery (MessageQueued); the suppression and quota issues put their guard steps in
 * front. The MessageQueued id derives from the MessageReceived id, so a redelivered
 * MessageReceived yields the same event again, which the log and the delivery stage take once.
 */
@Injectable()
export class QueueWhenReceivedReactor implements OnApplicationBootstrap, OnApplicationShutdown {
  private subscription?: Subscription;

  constructor(
    @Inject(EVENT_LOG) private readonly eventLog: EventLog,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.subscription = await this.eventLog.subscribe({
      group: 'policy',
      handle: (batch) => this.handle(batch),
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.subscription?.stop();
  }

  private async handle(batch: readonly LoggedEvent[]): Promise<void> {
    const decided: RelayEvent[] = [];
    for (const { event } of batch) {
      if (event.type === 'MessageReceived') decided.push(this.queue(event));
    }
    if (decided.length > 0) await this.eventLog.append(decided);
  }

  private queue(received: MessageReceived): RelayEvent {
    const { data } = received;
    this.logger.info('queued', {
      messageId: received.messageId,
      accountId: received.accountId,
      recipients: data.recipients.length,
      reason: 'no policy applies',
    });
    return createEvent('MessageQueued', {
      id: eventIdFor(received.id, 'queued'),
      accountId: received.accountId,
      ...(received.messageId ? { messageId: received.messageId } : {}),
      causationId: received.id,
      data: {
        recipients: data.recipients,
        mailFrom: data.mailFrom,
        size: data.size,
        spoolKey: data.spoolKey,
        period: periodOf(new Date(received.occurredAt)),
        smtpUtf8: data.smtpUtf8,
        eightBitMime: data.eightBitMime,
        receivedAt: received.occurredAt,
      },
    });
  }
}
