import { Inject, Injectable } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { counter, histogram, LOGGER, RELAY_CONFIG, type Logger, type RelayConfig } from '@relay/config';
import { authoriseSender, createEvent, newRelayMessageId, type RelayAuthMethod } from '@relay/domain';
import { EVENT_LOG, type EventLog } from '@relay/event-log';
import { SPOOL, type Spool, type SpooledBody } from '@relay/spool';
import { relayDeniedReply, SmtpReply } from '../smtp/smtp-reply.js';
import { CrlfNormaliser } from './crlf-normaliser.js';
import { HeaderStamper } from './header-stamper.js';
import type { MessageHeaders } from './message-headers.js';
import { MessageTooLargeError, SizeGuard } from './size-guard.js';
import { receivedHeader } from './trace-headers.js';

/** The sender as the SMTP session established it. */
export interface Submitter {
  readonly accountId: string;
  readonly allowedFrom: readonly string[];
  readonly auth: RelayAuthMethod;
  readonly username?: string;
}

export interface Submission {
  readonly submitter: Submitter;
  readonly mailFrom: string;
  readonly recipients: readonly string[];
  readonly clientIp: string;
  readonly clientHostname: string;
  readonly helo: string;
  readonly tls: boolean;
  readonly smtpUtf8: boolean;
  readonly eightBitMime: boolean;
}

const accepted = counter('relay_ingress_messages_accepted_total', 'Messages accepted with 250.');
const acceptedBytes = counter(
  'relay_ingress_bytes_accepted_total',
  'Octets of accepted messages, as spooled.',
);
export const refused = counter('relay_ingress_refused_total', 'SMTP refusals by reason.', ['reason']);
const appendSeconds = histogram(
  'relay_ingress_append_seconds',
  'Time to append MessageReceived to the event log.',
  [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
);

/**
 * What happens after DATA: the body streams (CRLF-normalised, trace headers added) into the spool
 * and is fsynced, then MessageReceived is appended, and only then does the client get 250. Any
 * failure before the append removes the body again: nothing is kept that was not acknowledged.
 */
@Injectable()
export class MessageIntake {
  constructor(
    @Inject(RELAY_CONFIG) private readonly config: RelayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(EVENT_LOG) private readonly eventLog: EventLog,
    @Inject(SPOOL) private readonly spool: Spool,
  ) {}

  /** Resolves with the 250 reply text, or rejects with the SmtpReply to send instead. */
  async receive(data: Readable, submission: Submission): Promise<string> {
    const started = Date.now();
    const relayId = newRelayMessageId(started);
    const stamper = new HeaderStamper({
      received: receivedHeader({
        helo: submission.helo,
        clientHostname: submission.clientHostname,
        clientIp: submission.clientIp,
        hostname: this.config.hostname,
        protocol: `ESMTP${submission.tls ? 'S' : ''}${submission.submitter.auth === 'smtp-auth' ? 'A' : ''}`,
        relayMessageId: relayId,
        date: new Date(started),
      }),
      fallbackMessageId: `${relayId}@${this.config.hostname}`,
      now: new Date(started),
    });
    const spooled = await this.spoolBody(data, relayId, stamper, submission);
    const headers = await stamper.headers;
    const { submitter } = submission;
    const log = { messageId: relayId, accountId: submitter.accountId, clientIp: submission.clientIp };

    if (headers.from === '') {
      await this.spool.remove(spooled.key);
      refused.inc({ reason: 'no-from' });
      this.logger.info('refused: no From address', log);
      throw new SmtpReply(550, '5.6.0', 'Message has no From header address');
    }
    const decision = authoriseSender(submitter.allowedFrom, headers.from);
    if (!decision.allowed) {
      await this.spool.remove(spooled.key);
      await this.appendRelayDenied(submission, headers, relayId);
      refused.inc({ reason: 'from-not-allowed' });
      this.logger.info('refused: From not allowed for the account', {
        ...log,
        from: headers.from,
        reason: decision.reason,
      });
      throw relayDeniedReply(submission.clientIp, headers.fromName ?? headers.from);
    }

    const event = createEvent('MessageReceived', {
      accountId: submitter.accountId,
      messageId: relayId,
      data: {
        mailFrom: submission.mailFrom,
        recipients: submission.recipients,
        from: headers.from,
        ...(headers.fromName ? { fromName: headers.fromName } : {}),
        ...(headers.subject !== undefined ? { subject: headers.subject } : {}),
        headerMessageId: headers.messageId,
        size: spooled.size,
        spoolKey: spooled.key,
        clientIp: submission.clientIp,
        auth: submitter.auth,
        ...(submitter.username ? { username: submitter.username } : {}),
        tls: submission.tls,
        smtpUtf8: submission.smtpUtf8,
        eightBitMime: submission.eightBitMime,
      },
    });
    const appendStarted = process.hrtime.bigint();
    try {
      await this.eventLog.append([event]);
    } catch (error) {
      await this.spool.remove(spooled.key).catch(() => undefined);
      refused.inc({ reason: 'event-log-unavailable' });
      this.logger.error('refused: the event log did not take MessageReceived', { ...log, error });
      throw new SmtpReply(451, '4.3.0', 'Temporary failure: message not accepted, try again later');
    }
    appendSeconds.observe(Number(process.hrtime.bigint() - appendStarted) / 1e9);
    accepted.inc();
    acceptedBytes.inc(spooled.size);
    this.logger.info('accepted', {
      ...log,
      size: spooled.size,
      recipients: submission.recipients.length,
      auth: submitter.auth,
      ms: Date.now() - started,
    });
    return `2.0.0 Ok: queued as ${relayId}`;
  }

  private async spoolBody(
    data: Readable,
    relayId: string,
    stamper: HeaderStamper,
    submission: Submission,
  ): Promise<SpooledBody> {
    const guard = new SizeGuard(this.config.maxMessageSize);
    const normaliser = new CrlfNormaliser();
    // Errors of the transforms reach the spool through this chain, which then keeps nothing.
    guard.on('error', (error) => normaliser.destroy(error));
    normaliser.on('error', (error) => stamper.destroy(error));
    data.pipe(guard).pipe(normaliser).pipe(stamper);
    try {
      return await this.spool.write(relayId, stamper);
    } catch (error) {
      // smtp-server waits for the DATA stream to be read to its end before it takes a reply.
      data.unpipe(guard);
      data.resume();
      if (!data.readableEnded) await new Promise((resolve) => data.once('end', resolve));
      if (error instanceof MessageTooLargeError) {
        refused.inc({ reason: 'too-large' });
        this.logger.info('refused: message too large', {
          messageId: relayId,
          accountId: submission.submitter.accountId,
          clientIp: submission.clientIp,
          maxSize: error.maxSize,
        });
        throw new SmtpReply(552, '5.3.4', `Message exceeds the maximum size of ${error.maxSize} octets`);
      }
      refused.inc({ reason: 'spool-unavailable' });
      this.logger.error('refused: the spool did not take the body', {
        messageId: relayId,
        accountId: submission.submitter.accountId,
        error,
      });
      throw new SmtpReply(451, '4.3.0', 'Temporary failure: message not accepted, try again later');
    }
  }

  private async appendRelayDenied(
    submission: Submission,
    headers: MessageHeaders,
    relayId: string,
  ): Promise<void> {
    const event = createEvent('RelayDenied', {
      accountId: submission.submitter.accountId,
      messageId: relayId,
      data: {
        reason: 'from-not-allowed',
        clientIp: submission.clientIp,
        mailFrom: submission.mailFrom,
        recipients: submission.recipients,
        from: headers.from,
        ...(headers.fromName ? { fromName: headers.fromName } : {}),
        ...(headers.subject !== undefined ? { subject: headers.subject } : {}),
      },
    });
    await this.eventLog.append([event]).catch((error: unknown) => {
      // The client is refused either way; the notification is what is lost, so say so loudly.
      this.logger.error('could not append RelayDenied', { messageId: relayId, error });
    });
  }
}
