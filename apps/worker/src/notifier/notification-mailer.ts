import { Readable } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import { counter, LOGGER, RELAY_CONFIG, type Logger, type RelayConfig } from '@relay/config';
import { buildDeliveryStatusReport } from '@relay/delivery';
import { createEvent, eventIdFor, type NotificationSent } from '@relay/domain';
import { SPOOL, SpoolBodyNotFoundError, type Spool } from '@relay/spool';
import { DeliveryDispatcher } from '../delivery/delivery-dispatcher.js';
import { DeliveryQueueRepository } from '../delivery/delivery-queue.repository.js';
import { SUPPRESSION_LOOKUP, type SuppressionLookup } from '../policy/suppression-lookup.port.js';
import { NotificationsRepository, type NotificationMail } from './notifications.repository.js';
import { readHeaderBlock, rebuiltHeaderBlock, subjectOf } from './original-headers.js';
import { newRelayMessageId } from '@relay/domain';
import type { SenderNotification } from './sender-notification.decide.js';
import { notificationText } from './sender-notification.text.js';

export type MailOutcome = 'sent' | 'already-notified' | 'notified-address-listed';

const notificationsTotal = counter(
  'relay_notifications_total',
  'Sender notifications by reason and outcome (sent, already-notified, notified-address-listed).',
  ['reason', 'outcome'],
);

/** A handler that lost the race for some keys tries again with the rest, at most this often. */
const MAX_CLAIMS = 3;

/**
 * Sends one sender notification: builds the RFC 3464 report, spools it, records it (keys,
 * notification row and NotificationSent in one transaction) and puts it on the delivery queue
 * with the null return path. It bypasses the policy stage on purpose: a notification is never
 * counted against a quota, suppressed by its own report, or tracked.
 *
 * Order for crash safety: spool first (a body nobody names is swept by the retention), then the
 * record (from then on the keys count as notified), then the queue; a record that never reached
 * the queue is found by requeueUnqueued.
 */
@Injectable()
export class NotificationMailer {
  constructor(
    @Inject(RELAY_CONFIG) private readonly config: RelayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(SPOOL) private readonly spool: Spool,
    @Inject(SUPPRESSION_LOOKUP) private readonly suppressions: SuppressionLookup,
    private readonly notifications: NotificationsRepository,
    private readonly queue: DeliveryQueueRepository,
    private readonly dispatcher: DeliveryDispatcher,
  ) {}

  async send(notification: SenderNotification): Promise<MailOutcome> {
    const reason = notification.cause.reason;
    const log = {
      messageId: notification.messageId,
      accountId: notification.accountId,
      reason,
      notified: notification.notified,
    };
    const listed = await this.suppressions.isListed(notification.accountId, [notification.notified]);
    const list = listed.get(notification.notified);
    if (list) {
      notificationsTotal.inc({ reason, outcome: 'notified-address-listed' });
      this.logger.info('notification not sent: the notified address is on a suppression list', {
        ...log,
        list,
      });
      return 'notified-address-listed';
    }
    for (let claim = 0; claim < MAX_CLAIMS; claim++) {
      const recipients = notification.recipients.map((r) => r.recipient);
      const done = await this.notifications.notifiedRecipients(notification.messageId, reason, recipients);
      const open = notification.recipients.filter((r) => !done.has(r.recipient));
      if (open.length === 0) {
        notificationsTotal.inc({ reason, outcome: 'already-notified' });
        this.logger.info('notification not sent: already notified', log);
        return 'already-notified';
      }
      const mail = await this.spoolReport({ ...notification, recipients: open });
      const event = this.notificationSent(
        notification,
        mail,
        open.map((r) => r.recipient),
      );
      const recorded = await this.notifications.record({
        mail,
        messageId: notification.messageId,
        recipients: open.map((r) => r.recipient),
        event,
      });
      if (!recorded) {
        await this.spool.remove(mail.spoolKey);
        continue;
      }
      await this.enqueue([{ ...mail, eventId: event.id, createdAt: new Date(event.occurredAt) }], true);
      notificationsTotal.inc({ reason, outcome: 'sent' });
      this.logger.info('notification sent', {
        ...log,
        recipients: open.length,
        notificationMessageId: mail.notificationMessageId,
      });
      return 'sent';
    }
    this.logger.info('notification not sent: other handlers notified its recipients meanwhile', log);
    return 'already-notified';
  }

  /**
   * Queues recorded notifications whose handler died between the record and the queue. Running
   * it twice, or beside the handler, is harmless: the queue takes a (message, recipient) once.
   */
  async requeueUnqueued(olderThanMs: number): Promise<number> {
    const pending = await this.notifications.unqueued(olderThanMs, 100);
    if (pending.length === 0) return 0;
    await this.enqueue(pending, false);
    for (const mail of pending) {
      this.logger.warn('notification queued after an interruption', {
        accountId: mail.accountId,
        reason: mail.reason,
        notificationMessageId: mail.notificationMessageId,
      });
    }
    return pending.length;
  }

  private async spoolReport(
    notification: SenderNotification,
  ): Promise<Omit<NotificationMail, 'createdAt' | 'eventId'>> {
    const now = new Date();
    const id = newRelayMessageId(now.getTime());
    const hostname = this.config.hostname;
    const original = await this.originalHeaders(notification);
    const { subject, text } = notificationText(
      notification,
      original.subject === undefined ? {} : { subject: original.subject },
      hostname,
    );
    const report = buildDeliveryStatusReport({
      reportingMta: hostname,
      to: notification.notified,
      subject,
      date: now,
      messageId: `${id}@${hostname}`,
      arrivalDate: notification.arrivalDate,
      text,
      recipients: notification.recipients,
      originalHeaders: original.block,
      originalHeadersDescription: original.description,
    });
    const spooled = await this.spool.write(id, Readable.from([report.raw]));
    return {
      notificationMessageId: id,
      accountId: notification.accountId,
      reason: notification.cause.reason,
      notified: notification.notified,
      spoolKey: spooled.key,
      size: spooled.size,
      smtpUtf8: report.smtpUtf8,
      eightBitMime: report.eightBit,
    };
  }

  /** The original header block: from the spooled body, else rebuilt from what the event recorded. */
  private async originalHeaders(
    notification: SenderNotification,
  ): Promise<{ block: Buffer; subject?: string; description: string }> {
    const { cause } = notification;
    if (cause.reason === 'relay-denied') {
      return {
        block: rebuiltHeaderBlock(cause),
        ...(cause.subject === undefined ? {} : { subject: cause.subject }),
        description: 'Undelivered Message Headers (rebuilt: the message was not kept)',
      };
    }
    if (notification.spoolKey) {
      try {
        const block = await readHeaderBlock(await this.spool.read(notification.spoolKey));
        const subject = subjectOf(block);
        return {
          block,
          ...(subject === undefined ? {} : { subject }),
          description: 'Undelivered Message Headers',
        };
      } catch (error) {
        if (!(error instanceof SpoolBodyNotFoundError)) throw error;
      }
    }
    // The body left the spool (every recipient final, or the retention): say so rather than invent.
    return { block: Buffer.alloc(0), description: 'Undelivered Message Headers (no longer available)' };
  }

  private notificationSent(
    notification: SenderNotification,
    mail: Omit<NotificationMail, 'createdAt' | 'eventId'>,
    recipients: readonly string[],
  ): NotificationSent {
    return createEvent('NotificationSent', {
      // Named by what it answers: the same answer can never enter the log under two ids.
      id: eventIdFor(
        'notification',
        notification.messageId,
        notification.cause.reason,
        ...[...recipients].sort(),
      ),
      accountId: notification.accountId,
      messageId: notification.messageId,
      causationId: notification.causationId,
      data: {
        reason: notification.cause.reason,
        notified: notification.notified,
        recipients,
        notificationMessageId: mail.notificationMessageId,
      },
    });
  }

  /** Onto the delivery queue with the null return path; leased to this worker when it has room. */
  private async enqueue(mails: readonly NotificationMail[], leaseIfRoom: boolean): Promise<void> {
    const owner = leaseIfRoom && this.dispatcher.hasCapacity() ? this.dispatcher.workerId : undefined;
    const leased = await this.queue.enqueueRecipients(
      mails.map((mail) => ({
        messageId: mail.notificationMessageId,
        recipient: mail.notified,
        accountId: mail.accountId,
        mailFrom: '',
        spoolKey: mail.spoolKey,
        size: mail.size,
        smtpUtf8: mail.smtpUtf8,
        eightBitMime: mail.eightBitMime,
        receivedAt: mail.createdAt.toISOString(),
        queuedEventId: mail.eventId,
        // RFC 3464 2 / RFC 5321 4.5.5: MAIL FROM:<>, so nothing can bounce back about it.
        returnPath: '',
      })),
      owner,
    );
    await this.notifications.markQueued(mails.map((m) => m.notificationMessageId));
    if (owner) this.dispatcher.submit(leased);
  }
}
