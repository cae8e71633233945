import { RESEND_WINDOW_MS, type Limits, type Usage } from '@relay/domain';
import {
  BOUNCE_LIST_SENTENCE,
  relayDeniedSentence,
  UNSUBSCRIBE_LIST_SENTENCE,
  type SenderNotification,
} from './sender-notification.decide.js';

/** What is known of the original message for the text (read from its headers). */
export interface OriginalSummary {
  readonly subject?: string;
}

export interface NotificationText {
  readonly subject: string;
  /** The report's human-readable part; `\n` line ends. */
  readonly text: string;
}

/** How long a held message can still be resent. */
const RESEND_WINDOW_HOURS = RESEND_WINDOW_MS / 3_600_000;

const list = (addresses: readonly string[]): string => addresses.map((a) => `  <${a}>`).join('\n');

function aboutTheMessage(n: SenderNotification, original: OriginalSummary): string {
  const lines = [`Message ID: ${n.messageId}`];
  if (original.subject !== undefined) lines.push(`Subject:    ${original.subject.replace(/\p{Cc}+/gu, ' ')}`);
  return lines.join('\n');
}

const amount = (used: number, limit: number | null, unit: string): string =>
  limit === null ? `${used} ${unit} (no limit)` : `${used} of ${limit} ${unit}`;

function quotaLines(period: string, usage: Usage, limits: Limits): string {
  return [
    `Period:     ${period} (UTC calendar month)`,
    `Messages:   ${amount(usage.messages, limits.messages, 'messages')}`,
    `Size:       ${amount(usage.bytes, limits.bytes, 'bytes')}`,
  ].join('\n');
}

/**
 * The Subject and human-readable explanation of a notification. The sentences that senders'
 * software looks for stand on lines of their own, unbroken.
 */
export function notificationText(
  n: SenderNotification,
  original: OriginalSummary,
  hostname: string,
): NotificationText {
  const recipients = n.recipients.map((r) => r.recipient);
  const intro = `This is the mail system at ${hostname}.`;
  const about = aboutTheMessage(n, original);
  switch (n.cause.reason) {
    case 'suppressed-bounce':
      return {
        subject: 'Undelivered Mail: recipient is on the Bounce list',
        text: [
          intro,
          `Your message was not sent to the following ${recipients.length === 1 ? 'recipient' : 'recipients'}:`,
          list(recipients),
          BOUNCE_LIST_SENTENCE,
          'The account no longer sends to addresses on its Bounce list: earlier mail to them\n' +
            'bounced permanently. If an address works again, remove it from the Bounce list and\n' +
            'send the message again.',
          about,
        ].join('\n\n'),
      };
    case 'suppressed-unsubscribe':
      return {
        subject: 'Undelivered Mail: recipient has unsubscribed',
        text: [
          intro,
          `Your message was not sent to the following ${recipients.length === 1 ? 'recipient' : 'recipients'}:`,
          list(recipients),
          UNSUBSCRIBE_LIST_SENTENCE,
          'The recipient unsubscribed from mail of this account, so it no longer sends to them.',
          about,
        ].join('\n\n'),
      };
    case 'relay-denied': {
      const { clientIp, from, fromName, subject } = n.cause;
      return {
        subject: 'Undelivered Mail: relaying denied',
        text: [
          intro,
          'Your message was refused when it was submitted, and was not sent to anyone:',
          relayDeniedSentence(clientIp, fromName ?? from),
          `The From address <${from}> is not one the account may send as. Add it to the\n` +
            "account's allowed From addresses, or send with an address that is allowed.",
          `Recipients:\n${list(recipients)}`,
          aboutTheMessage(n, subject === undefined ? {} : { subject }),
          'The relay did not keep the message: the headers attached below are rebuilt from\n' +
            'what was recorded at submission (From and Subject), not the original header block.',
        ].join('\n\n'),
      };
    }
    case 'bounced':
      return {
        subject: 'Undelivered Mail Returned to Sender',
        text: [
          intro,
          "I'm sorry to have to inform you that your message could not be delivered to one or\n" +
            'more recipients. The reason the receiving server gave is below.',
          n.recipients
            .map((r) => {
              const host = r.remoteMta ? ` (host ${r.remoteMta})` : '';
              return `<${r.recipient}>: ${r.diagnosticCode?.text ?? r.status}${host}`;
            })
            .join('\n'),
          about,
        ].join('\n\n'),
      };
    case 'quota-exceeded': {
      const { period, usage, limits } = n.cause;
      return {
        subject: 'Undelivered Mail: monthly sending limit reached',
        text: [
          intro,
          'Your account is over its monthly sending limit, so your message was not delivered to\n' +
            `the following ${recipients.length === 1 ? 'recipient' : 'recipients'}:`,
          list(recipients),
          quotaLines(period, usage, limits),
          "Once the account's limit is raised, support can resend messages held back in the\n" +
            `last ${RESEND_WINDOW_HOURS} hours.`,
          about,
        ].join('\n\n'),
      };
    }
  }
}
