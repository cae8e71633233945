import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LOGGER, type Logger } from '@relay/config';
import type { ResendRequested } from '@relay/domain';
import { EVENT_LOG, type EventLog, type LoggedEvent, type Subscription } from '@relay/event-log';
import { ResubmissionsRepository, type ResendInProgress } from './resubmissions.repository.js';

/** Thrown between two messages when the worker stops: the log delivers the request again at the next start. */
class StoppedMidResend extends Error {}

const isResend = (event: LoggedEvent['event']): event is ResendRequested =>
  event.type === 'ResendRequested' && !event.data.dryRun && event.accountId !== null;

/**
 * The resend (consumer group `resend`): for a ResendRequested that is not a dry run, replays the
 * account's QuotaExceeded events of [since, requestedAt) from the event log and hands their held
 * recipients back to the policy stage as MessageResubmitted, one per QuotaExceeded, one
 * transaction each. Recipients queued since (delivered, bounced or on their way) and those already
 * resubmitted from that QuotaExceeded are left out, so a redelivered request, a resumed one (after
 * a crash, it takes up where it stopped) or a second resend never hands a recipient back twice.
 */
@Injectable()
export class ResubmitHeldMailWhenResendRequestedReactor
  implements OnApplicationBootstrap, OnApplicationShutdown
{
  private subscription?: Subscription;
  private stopping = false;

  constructor(
    @Inject(EVENT_LOG) private readonly eventLog: EventLog,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(ResubmissionsRepository) private readonly resubmissions: ResubmissionsRepository,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.subscription = await this.eventLog.subscribe({
      group: 'resend',
      types: ['ResendRequested'],
      handle: (batch) => this.handle(batch),
    });
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await this.subscription?.stop();
  }

  private async handle(batch: readonly LoggedEvent[]): Promise<void> {
    for (const { event } of batch) {
      if (!isResend(event)) continue;
      const resend: ResendInProgress = {
        id: event.data.resendId,
        accountId: event.accountId!,
        since: new Date(event.data.since),
        requestedAt: new Date(event.occurredAt),
        requestedEventId: event.id,
      };
      await this.resubmissions.withAccountLock(resend.accountId, () => this.resend(resend));
    }
  }

  private async resend(resend: ResendInProgress): Promise<void> {
    const fields = { resendId: resend.id, accountId: resend.accountId };
    if ((await this.resubmissions.begin(resend)) === 'done') {
      this.logger.info('resend already done', { ...fields, reason: 'request delivered again' });
      return;
    }
    const held = await this.resubmissions.findHeld(this.eventLog, {
      accountId: resend.accountId,
      since: resend.since,
      until: resend.requestedAt,
      resendId: resend.id,
    });
    const remaining = held.reduce((n, mail) => n + mail.recipients.length, 0);
    const status = await this.resubmissions.start(resend.id, remaining);
    this.logger.info('resend started', {
      ...fields,
      since: resend.since.toISOString(),
      messages: held.length,
      recipients: remaining,
      status,
    });
    let resubmitted = 0;
    for (const mail of held) {
      if (this.stopping)
        throw new StoppedMidResend(`worker stopping: resend ${resend.id} resumes at the next start`);
      const result = await this.resubmissions.resubmit(resend, mail);
      resubmitted += result.recipients.length;
      this.logger.info('resubmitted', {
        ...fields,
        messageId: mail.messageId,
        quotaExceededEventId: mail.quotaExceeded.id,
        recipients: result.recipients.length,
        reason: `held back by quota at ${mail.quotaExceeded.occurredAt}`,
        ...(result.recipients.length < mail.recipients.length
          ? { takenByAnotherResend: mail.recipients.length - result.recipients.length }
          : {}),
      });
    }
    this.logger.info('resend resubmitted its held mail', { ...fields, recipients: resubmitted });
  }
}
