import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LOGGER, type Logger } from '@relay/config';
import { decidePolicy, type PolicyInput, type RelayEvent } from '@relay/domain';
import { EVENT_LOG, type EventLog, type LoggedEvent, type Subscription } from '@relay/event-log';
import { SUPPRESSION_LOOKUP, type SuppressionLookup } from './suppression-lookup.port.js';

const isPolicyInput = (event: LoggedEvent['event']): event is PolicyInput =>
  event.type === 'MessageReceived' || event.type === 'MessageResubmitted';

/**
 * The policy stage (consumer group `policy`): for each MessageReceived or MessageResubmitted,
 * looks up the facts the guard steps need and appends what decidePolicy says (Suppressed,
 * MessageQueued). Decided events have ids derived from their cause, so a redelivered batch
 * appends nothing new.
 */
@Injectable()
export class ApplyPolicyWhenReceivedReactor implements OnApplicationBootstrap, OnApplicationShutdown {
  private subscription?: Subscription;

  constructor(
    @Inject(EVENT_LOG) private readonly eventLog: EventLog,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(SUPPRESSION_LOOKUP) private readonly suppressions: SuppressionLookup,
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
      if (!isPolicyInput(event) || !event.accountId) continue;
      const listed = await this.suppressions.isListed(event.accountId, event.data.recipients);
      const { events } = decidePolicy(event, { listed, now: new Date() });
      this.log(event, events);
      decided.push(...events);
    }
    if (decided.length > 0) await this.eventLog.append(decided);
  }

  /** One line per decision, with the message, the account and the reason. */
  private log(input: PolicyInput, events: readonly RelayEvent[]): void {
    for (const event of events) {
      const fields = { messageId: input.messageId, accountId: input.accountId };
      if (event.type === 'Suppressed') {
        this.logger.info('suppressed', {
          ...fields,
          recipient: event.data.recipient,
          reason: `on the ${event.data.list} list`,
        });
      } else if (event.type === 'MessageQueued') {
        this.logger.info('queued', {
          ...fields,
          recipients: event.data.recipients.length,
          reason: 'no guard step applies',
        });
      }
    }
  }
}
