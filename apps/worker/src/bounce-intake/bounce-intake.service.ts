import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { counter, LOGGER, RELAY_CONFIG, type Logger, type RelayConfig } from '@relay/config';
import { parseDeliveryStatusNotification, parseVerpAddress, type VerpToken } from '@relay/delivery';
import type { Bounced } from '@relay/domain';
import { EVENT_LOG, type EventLog } from '@relay/event-log';
import { DELIVERY_LOOKUP, type DeliveryLookup } from './delivery-lookup.port.js';
import { decideDsnBounces } from './dsn-bounces.decide.js';

/** Reports are small; a returned original message may be attached in full, so allow some room. */
export const BOUNCE_MAX_MESSAGE_SIZE = 10 * 1024 * 1024;
/** One report goes to one return path; a few more covers an MTA that batches reports. */
const MAX_RECIPIENTS = 100;

const reportsTotal = counter(
  'relay_bounce_intake_reports_total',
  'Messages received by the bounce intake, by what became of them.',
  ['result'],
);

type ReportResult = 'bounced' | 'not-a-report' | 'unknown-message' | 'nothing-failed';

const countReport = (result: ReportResult): void => reportsTotal.inc({ result });

/** An error smtp-server answers with `responseCode`, adding its default enhanced code for that code. */
function smtpError(responseCode: number, message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode });
}

/**
 * The bounce intake: an SMTP listener (BOUNCE_SMTP_PORT) for the VERP return paths of the
 * relay's outbound mail. It takes RCPT only for `bounces+<token>@<bounce domain>`, reads RFC 3464
 * reports and appends Bounced (source: dsn) for each failed recipient. Anything else sent to a
 * valid return path (an auto-reply, a challenge) is accepted and dropped with a log line: there is
 * nobody to refuse it to, since bounces of bounces go nowhere.
 */
@Injectable()
export class BounceIntakeService implements OnApplicationBootstrap, OnApplicationShutdown {
  private server?: SMTPServer;
  private readonly logger: Logger;
  readonly bounceDomain: string;

  constructor(
    @Inject(RELAY_CONFIG) private readonly config: RelayConfig,
    @Inject(LOGGER) logger: Logger,
    @Inject(EVENT_LOG) private readonly eventLog: EventLog,
    @Inject(DELIVERY_LOOKUP) private readonly lookup: DeliveryLookup,
  ) {
    this.logger = logger.child({ component: 'bounce-intake' });
    this.bounceDomain = config.bounceDomain ?? config.hostname;
  }

  async onApplicationBootstrap(): Promise<void> {
    const server = new SMTPServer({
      name: this.config.hostname,
      banner: 'bounce intake',
      // Remote MTAs deliver reports unauthenticated; this listener takes nothing else.
      disabledCommands: ['AUTH', 'STARTTLS'],
      authOptional: true,
      size: BOUNCE_MAX_MESSAGE_SIZE,
      maxRecipients: MAX_RECIPIENTS,
      hideENHANCEDSTATUSCODES: false,
      disableReverseLookup: true,
      socketTimeout: this.config.smtpIdleTimeoutMs,
      closeTimeout: 30_000,
      logger: false,
      onRcptTo: (address, _session, callback) => {
        if (parseVerpAddress(address.address, this.bounceDomain)) return callback();
        // smtp-server adds 5.1.1 to a 550 without its own enhanced code.
        callback(smtpError(550, 'No such user here'));
      },
      onData: (stream, session, callback) => {
        this.onData(stream, session).then(
          (reply) => callback(null, reply),
          (error: unknown) => {
            this.logger.error('bounce intake failed; the sender will retry', {
              sessionId: session.id,
              error,
            });
            callback(smtpError(451, 'Requested action aborted: local error in processing'));
          },
        );
      },
    });
    server.on('error', (error) => this.logger.warn('bounce intake connection error', { error }));
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(this.config.bounceSmtpPort, this.config.listenHost, () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.logger.info('bounce intake listening', { port: this.port(), bounceDomain: this.bounceDomain });
  }

  /** Stops accepting; sessions in progress may finish (up to the close timeout). */
  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The port the listener is bound to (the configured one, or the one picked for port 0). */
  port(): number | undefined {
    const address = this.server?.server.address();
    return typeof address === 'object' && address ? address.port : undefined;
  }

  private async onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const raw = await readMessage(stream);
    // smtp-server answers 552 5.3.4 for an oversized message whatever we reply: record nothing.
    if (stream.sizeExceeded) return 'Ok: too large, ignored';
    const tokens = uniqueTokens(
      session.envelope.rcptTo.map((rcpt) => parseVerpAddress(rcpt.address, this.bounceDomain)),
    );
    const report = parseDeliveryStatusNotification(raw);
    const reportId = createHash('sha256').update(raw).digest('hex');
    const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    if (!report) {
      countReport('not-a-report');
      this.logger.info('not a delivery status report; ignored', {
        messageIds: tokens.map((t) => t.messageId),
        mailFrom,
        reason: 'no message/delivery-status part',
      });
      return 'Ok: not a delivery status report, ignored';
    }
    // Every event of every token first, then one append: 250 only once the log has them all.
    const events: Bounced[] = [];
    for (const token of tokens) {
      const message = await this.lookup.findMessage(token.messageId);
      if (!message) {
        countReport('unknown-message');
        this.logger.warn('report for an unknown message; ignored', {
          messageId: token.messageId,
          reportingMta: report.reportingMta,
          reason: 'no such message',
        });
        continue;
      }
      const { bounced, unmatched } = decideDsnBounces({ token, message, report, reportId });
      for (const entry of unmatched) {
        this.logger.warn('failed recipient of a report matches no recipient of the message; ignored', {
          messageId: token.messageId,
          accountId: message.accountId,
          finalRecipient: entry.finalRecipient,
          originalRecipient: entry.originalRecipient,
          status: entry.status,
        });
      }
      countReport(bounced.length > 0 ? 'bounced' : 'nothing-failed');
      if (bounced.length === 0) {
        this.logger.info('report names no failed recipient; ignored', {
          messageId: token.messageId,
          accountId: message.accountId,
          actions: report.recipients.map((r) => r.action ?? 'unknown'),
          reason: 'no Action: failed',
        });
      }
      events.push(...bounced);
    }
    if (events.length > 0) await this.eventLog.append(events);
    for (const event of events) {
      this.logger.info('bounced', {
        messageId: event.messageId,
        accountId: event.accountId,
        recipient: event.data.recipient,
        bounceClass: event.data.bounceClass,
        category: event.data.category,
        status: event.data.status,
        source: event.data.source,
        mx: event.data.mx,
        reportingMta: report.reportingMta,
        diagnostic: event.data.diagnostic,
      });
    }
    return events.length > 0 ? `Ok: ${events.length} bounce(s) recorded` : 'Ok: nothing to record';
  }
}

function uniqueTokens(tokens: readonly (VerpToken | null)[]): VerpToken[] {
  const seen = new Map<string, VerpToken>();
  for (const token of tokens) {
    if (token) seen.set(`${token.messageId}-${token.recipientTag ?? ''}`, token);
  }
  return [...seen.values()];
}

/** The whole message; past the size limit smtp-server refuses it anyway, so the rest is drained unkept. */
async function readMessage(stream: SMTPServerDataStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= BOUNCE_MAX_MESSAGE_SIZE) chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
