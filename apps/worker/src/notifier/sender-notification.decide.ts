import type { ReportedRecipient } from '@relay/delivery';
import type {
  Bounced,
  Limits,
  QuotaExceeded,
  RelayDenied,
  RelayEvent,
  Suppressed,
  Usage,
} from '@relay/domain';
import { relayMessageIdTime } from '@relay/domain';

/** The exact sentences senders' software may already look for (issue 5). */
export const BOUNCE_LIST_SENTENCE =
  "BouncedEmailAddressException: Email address is on account's Bounce list.";
export const UNSUBSCRIBE_LIST_SENTENCE =
  "UnsubscribedEmailAddressException: Email address is on account's Unsubscribe list.";
/** The reply line the client got at the SMTP edge (smtp-ingress relayDeniedReply), word for word. */
export const relayDeniedSentence = (clientIp: string, name: string): string =>
  `Relaying denied for [${clientIp}] / "${name}"`;

/** RFC 3464 2.3.6 diagnostic type for what the relay itself decided (no SMTP reply was involved). */
const OWN_DIAGNOSTIC = 'X-Relay';
/** RFC 3463 X.7.1: delivery not authorised, message refused (per-recipient or per-sender policy). */
const POLICY_STATUS = '5.7.1';

/** What the report says about its cause, beyond the recipients. */
export type NotificationCause =
  | { readonly reason: 'suppressed-bounce' }
  | { readonly reason: 'suppressed-unsubscribe' }
  | {
      readonly reason: 'relay-denied';
      readonly clientIp: string;
      readonly from: string;
      readonly fromName?: string;
      readonly subject?: string;
    }
  | { readonly reason: 'bounced' }
  | {
      readonly reason: 'quota-exceeded';
      readonly period: string;
      readonly usage: Usage;
      readonly limits: Limits;
    };

/** One report to send: about one message, for one reason, to one address. */
export interface SenderNotification {
  readonly cause: NotificationCause;
  readonly accountId: string;
  /** The original message the report is about. */
  readonly messageId: string;
  /** Where the report goes. */
  readonly notified: string;
  readonly recipients: readonly ReportedRecipient[];
  /** The (first) event that caused it. */
  readonly causationId: string;
  readonly arrivalDate: Date;
  /** The original body, for its headers; absent when the relay did not keep it (RelayDenied). */
  readonly spoolKey?: string;
}

/** What the delivery stage holds about a recipient's message (for a Bounced, which carries none of it). */
export interface OriginalDelivery {
  readonly mailFrom: string;
  readonly spoolKey: string;
  readonly receivedAt: Date;
}

/** What the decision needs beyond the event, looked up before it. */
export interface NotifierFacts {
  /** Message ids (of the events at hand) that are themselves notifications. */
  readonly notificationIds: ReadonlySet<string>;
  /** Bounced recipients' deliveries, by deliveryKey. */
  readonly originals: ReadonlyMap<string, OriginalDelivery>;
  /** Accounts that asked for bounce notifications (bounceNotifications on). */
  readonly bounceNotificationAccounts: ReadonlySet<string>;
}

export type NotifyDecision =
  | { readonly notify: true; readonly notification: SenderNotification }
  | { readonly notify: false; readonly event: NotifierCause; readonly why: string };

export type NotifierCause = Suppressed | RelayDenied | Bounced | QuotaExceeded;

export const deliveryKey = (messageId: string, recipient: string): string => `${messageId}\u0000${recipient}`;

export function isNotifierCause(event: RelayEvent): event is NotifierCause {
  switch (event.type) {
    case 'Suppressed':
    case 'RelayDenied':
    case 'Bounced':
    case 'QuotaExceeded':
      return true;
    default:
      return false;
  }
}

/** The message an event is about; a RelayDenied without one is keyed by its own id. */
export const messageIdOf = (event: NotifierCause): string => event.messageId ?? event.id;

/** Whom a notification of this event goes to, as far as the event itself says. */
function notifiedBy(event: NotifierCause, facts: NotifierFacts): string | undefined {
  switch (event.type) {
    case 'Suppressed':
      // The Unsubscribe list answers to the author (From), the Bounce list to the envelope sender.
      return event.data.list === 'unsubscribe' ? event.data.from : event.data.mailFrom;
    case 'Bounced':
      return facts.originals.get(deliveryKey(messageIdOf(event), event.data.recipient))?.mailFrom;
    case 'RelayDenied':
    case 'QuotaExceeded':
      return event.data.mailFrom;
  }
}

/** The envelope sender of the original message: '' is the null sender. */
function envelopeSenderOf(event: NotifierCause, facts: NotifierFacts): string | undefined {
  return event.type === 'Bounced' ? notifiedBy(event, facts) : event.data.mailFrom;
}

type Guard = (event: NotifierCause, facts: NotifierFacts) => string | undefined;

/** A client no account matched is never answered by mail: that would be backscatter. */
const skipUnlessAccountKnown: Guard = (event) =>
  event.accountId === null ? 'no account: a notification would be backscatter' : undefined;

/** Only a known account's From refusal is reported; an unauthenticated client got its SMTP reply. */
const skipUnlessFromNotAllowed: Guard = (event) =>
  event.type === 'RelayDenied' && event.data.reason !== 'from-not-allowed'
    ? `relay denied as ${event.data.reason}`
    : undefined;

/** A notification never causes another (RFC 3464 2: no DSN about a DSN). */
const skipIfAboutANotification: Guard = (event, facts) =>
  facts.notificationIds.has(messageIdOf(event)) ? 'the message is itself a notification' : undefined;

/** Bounces are reported only to accounts that asked for them. */
const skipUnlessAccountAsksForBounces: Guard = (event, facts) =>
  event.type === 'Bounced' && !facts.bounceNotificationAccounts.has(event.accountId ?? '')
    ? 'the account does not ask for bounce notifications'
    : undefined;

/** A Bounced of a message the delivery stage does not know cannot be answered. */
const skipUnlessOriginalKnown: Guard = (event, facts) =>
  event.type === 'Bounced' && envelopeSenderOf(event, facts) === undefined
    ? 'the bounced message is not on the delivery queue'
    : undefined;

/** RFC 3464 2 / RFC 5321 4.5.5: mail with the null reverse-path gets no report, nor its author. */
const skipIfNullSender: Guard = (event, facts) =>
  envelopeSenderOf(event, facts) === '' ? 'null envelope sender' : undefined;

const skipIfNobodyToNotify: Guard = (event, facts) =>
  notifiedBy(event, facts) ? undefined : 'no address to notify';

const GUARDS: readonly Guard[] = [
  skipUnlessAccountKnown,
  skipUnlessFromNotAllowed,
  skipIfAboutANotification,
  skipUnlessAccountAsksForBounces,
  skipUnlessOriginalKnown,
  skipIfNullSender,
  skipIfNobodyToNotify,
];

/** `smtp` when the text is an SMTP reply line, the relay's own type otherwise. */
export function diagnosticTypeOf(text: string): string {
  return /^[245]\d\d[\s-]/.test(text) ? 'smtp' : OWN_DIAGNOSTIC;
}

function causeOf(event: NotifierCause): NotificationCause {
  switch (event.type) {
    case 'Suppressed':
      return { reason: event.data.list === 'bounce' ? 'suppressed-bounce' : 'suppressed-unsubscribe' };
    case 'RelayDenied':
      return {
        reason: 'relay-denied',
        clientIp: event.data.clientIp,
        from: event.data.from ?? '',
        ...(event.data.fromName ? { fromName: event.data.fromName } : {}),
        ...(event.data.subject !== undefined ? { subject: event.data.subject } : {}),
      };
    case 'Bounced':
      return { reason: 'bounced' };
    case 'QuotaExceeded':
      return {
        reason: 'quota-exceeded',
        period: event.data.period,
        usage: event.data.usage,
        limits: event.data.limits,
      };
  }
}

function recipientsOf(event: NotifierCause): ReportedRecipient[] {
  switch (event.type) {
    case 'Suppressed': {
      const sentence = event.data.list === 'bounce' ? BOUNCE_LIST_SENTENCE : UNSUBSCRIBE_LIST_SENTENCE;
      return [
        {
          recipient: event.data.recipient,
          status: POLICY_STATUS,
          diagnosticCode: { type: OWN_DIAGNOSTIC, text: sentence },
        },
      ];
    }
    case 'RelayDenied': {
      const { clientIp, fromName, from } = event.data;
      const reply = `550 5.7.1 ${relayDeniedSentence(clientIp, fromName ?? from ?? '')}`;
      return event.data.recipients.map((recipient) => ({
        recipient,
        status: POLICY_STATUS,
        diagnosticCode: { type: 'smtp', text: reply },
      }));
    }
    case 'Bounced':
      return [
        {
          recipient: event.data.recipient,
          status: event.data.status,
          diagnosticCode: { type: diagnosticTypeOf(event.data.diagnostic), text: event.data.diagnostic },
          ...(event.data.mx ? { remoteMta: event.data.mx } : {}),
        },
      ];
    case 'QuotaExceeded': {
      const text = `monthly sending limit reached for ${event.data.period}`;
      return event.data.recipients.map((recipient) => ({
        recipient,
        status: POLICY_STATUS,
        diagnosticCode: { type: OWN_DIAGNOSTIC, text },
      }));
    }
  }
}

/** Where the original body is; a RelayDenied's was never kept. */
const spoolKeyOf = (event: Suppressed | RelayDenied | QuotaExceeded): string | undefined =>
  event.type === 'RelayDenied' ? undefined : event.data.spoolKey;

/**
 * Whether an event leads to a notification of the sender, and what it says; `facts` are what the
 * event does not carry. Pure: the guard steps read as the rules of the notifier.
 */
export function decideNotification(event: NotifierCause, facts: NotifierFacts): NotifyDecision {
  for (const guard of GUARDS) {
    const why = guard(event, facts);
    if (why !== undefined) return { notify: false, event, why };
  }
  const messageId = messageIdOf(event);
  const original =
    event.type === 'Bounced' ? facts.originals.get(deliveryKey(messageId, event.data.recipient)) : undefined;
  const spoolKey = event.type === 'Bounced' ? original?.spoolKey : spoolKeyOf(event);
  return {
    notify: true,
    notification: {
      cause: causeOf(event),
      accountId: event.accountId ?? '',
      messageId,
      notified: notifiedBy(event, facts) ?? '',
      recipients: recipientsOf(event),
      causationId: event.id,
      arrivalDate: original?.receivedAt ?? relayMessageIdTime(messageId) ?? new Date(event.occurredAt),
      ...(spoolKey ? { spoolKey } : {}),
    },
  };
}

/**
 * One report per message, reason and notified address: several recipients of a message suppressed
 * or bounced in one batch share it. A recipient given twice (a redelivered event) counts once.
 */
export function groupByMessage(notifications: readonly SenderNotification[]): SenderNotification[] {
  const groups = new Map<string, SenderNotification>();
  for (const n of notifications) {
    const key = [n.accountId, n.messageId, n.cause.reason, n.notified].join('\u0000');
    const group = groups.get(key);
    if (!group) {
      groups.set(key, { ...n, recipients: uniqueRecipients(n.recipients) });
      continue;
    }
    groups.set(key, { ...group, recipients: uniqueRecipients([...group.recipients, ...n.recipients]) });
  }
  return [...groups.values()];
}

function uniqueRecipients(recipients: readonly ReportedRecipient[]): ReportedRecipient[] {
  const seen = new Map<string, ReportedRecipient>();
  for (const r of recipients) if (!seen.has(r.recipient)) seen.set(r.recipient, r);
  return [...seen.values()];
}
