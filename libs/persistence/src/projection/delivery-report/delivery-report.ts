import type { EventOfType } from '@relay/domain';

/**
 * The delivery report read model as the admin API shows it: what happened to a message and to
 * each of its recipients. `evolveReport` folds the events into it (pure); DeliveryReportProjector
 * loads and stores the rows around it, DeliveryReportsRepository reads them.
 */

/** Where one recipient stands; the last event about it decides. */
export const RECIPIENT_STATUSES = [
  'received',
  'queued',
  'deferred',
  'delivered',
  'bounced',
  'suppressed',
  'quota-exceeded',
  'denied',
] as const;
export type RecipientStatus = (typeof RECIPIENT_STATUSES)[number];

/** Where a message stands as a whole, derived from its recipients by messageStatusOf. */
export const MESSAGE_STATUSES = [
  'queued',
  'deferred',
  'delivered',
  'bounced',
  'partially-delivered',
  'suppressed',
  'held',
  'denied',
] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

export function isMessageStatus(value: string): value is MessageStatus {
  return (MESSAGE_STATUSES as readonly string[]).includes(value);
}

/**
 * A message's status from its recipients'. While any recipient is still in flight the message is
 * too: deferred if any waits for a retry, else queued. Once all are final: delivered when all
 * were, partially-delivered when some were; otherwise held (quota) before bounced before
 * suppressed, since held mail is the part a support agent can still release with a resend.
 * Undefined for a message without recipient rows.
 */
export function messageStatusOf(recipients: readonly RecipientStatus[]): MessageStatus | undefined {
  if (recipients.length === 0) return undefined;
  const count = (status: RecipientStatus): number => recipients.filter((s) => s === status).length;
  if (count('deferred') > 0) return 'deferred';
  if (count('received') > 0 || count('queued') > 0) return 'queued';
  const delivered = count('delivered');
  if (delivered === recipients.length) return 'delivered';
  if (delivered > 0) return 'partially-delivered';
  if (count('quota-exceeded') > 0) return 'held';
  if (count('bounced') > 0) return 'bounced';
  if (count('suppressed') > 0) return 'suppressed';
  return 'denied';
}

/** One step in a recipient's history, in log order. Absent fields did not apply to the step. */
export interface TimelineEntry {
  /** The event's occurredAt. */
  readonly at: string;
  /** The event type: MessageReceived, MessageQueued, Deferred, Delivered, Bounced, ... */
  readonly type: string;
  /** The event's id (de-duplicates a repeated event; joins with the log and Kafka). */
  readonly eventId: string;
  /** Remote reply line (Deferred, Delivered). */
  readonly reply?: string;
  readonly mx?: string;
  readonly attempt?: number;
  /** Deferred: when the next attempt is due. */
  readonly nextAttemptAt?: string;
  /** Bounced: RFC 3463 enhanced status code, the diagnostic text, and where the bounce came from. */
  readonly status?: string;
  readonly diagnostic?: string;
  readonly source?: string;
  /** Suppressed: the list the recipient is on. */
  readonly list?: string;
  /** RelayDenied: why. */
  readonly reason?: string;
  /** MessageQueued or MessageResubmitted by a resend. */
  readonly resendId?: string;
}

export interface RecipientReport {
  readonly recipient: string;
  readonly status: RecipientStatus;
  /** Highest delivery attempt number seen (0 before the first). */
  readonly attempts: number;
  readonly lastReply: string | null;
  readonly mx: string | null;
  readonly nextAttemptAt: string | null;
  readonly bounceClass: string | null;
  readonly statusCode: string | null;
  readonly timeline: readonly TimelineEntry[];
}

/** A message without its recipients, as listed per account. */
export interface MessageSummary {
  readonly id: string;
  readonly accountId: string;
  /** Null when the projection has not seen the event that carries the field. */
  readonly mailFrom: string | null;
  readonly from: string | null;
  readonly subject: string | null;
  readonly size: number | null;
  readonly recipientsCount: number;
  readonly status: MessageStatus;
  readonly receivedAt: string;
  readonly updatedAt: string;
}

export interface MessageReport extends MessageSummary {
  readonly recipients: readonly RecipientReport[];
}

/** The event types the delivery report is built from. */
export const DELIVERY_REPORT_EVENT_TYPES = [
  'MessageReceived',
  'RelayDenied',
  'MessageQueued',
  'MessageResubmitted',
  'Deferred',
  'Delivered',
  'Bounced',
  'Suppressed',
  'QuotaExceeded',
] as const;
export type DeliveryReportEvent = EventOfType<(typeof DELIVERY_REPORT_EVENT_TYPES)[number]>;

/** A recipient row: the report plus when it last changed. */
export interface RecipientState extends RecipientReport {
  readonly updatedAt: string;
}

/** A message row with its recipient rows, by address. */
export interface MessageState extends MessageSummary {
  readonly recipients: ReadonlyMap<string, RecipientState>;
}

/** What an event says about the message as a whole; an absent field says nothing. */
interface MessageFacts {
  readonly mailFrom?: string;
  readonly from?: string;
  readonly subject?: string;
  readonly size?: number;
  readonly recipientsCount?: number;
  /** When the ingress accepted the message, from the events that know it. */
  readonly receivedAt?: string;
}

/** What an event does to each recipient it names. */
interface RecipientChange {
  readonly recipients: readonly string[];
  readonly status: RecipientStatus;
  readonly attempt?: number;
  readonly reply?: string;
  readonly mx?: string;
  /** Always written: null clears a retry that is no longer due. */
  readonly nextAttemptAt: string | null;
  readonly bounceClass?: string;
  readonly statusCode?: string;
  readonly entry: Omit<TimelineEntry, 'at' | 'type' | 'eventId'>;
}

function factsOf(event: DeliveryReportEvent): MessageFacts {
  switch (event.type) {
    case 'MessageReceived':
      return {
        mailFrom: event.data.mailFrom,
        from: event.data.from,
        subject: event.data.subject,
        size: event.data.size,
        recipientsCount: new Set(event.data.recipients).size,
        receivedAt: event.occurredAt,
      };
    case 'RelayDenied':
      return {
        mailFrom: event.data.mailFrom,
        from: event.data.from,
        subject: event.data.subject,
        recipientsCount: new Set(event.data.recipients).size,
        receivedAt: event.occurredAt,
      };
    case 'MessageQueued':
      return { mailFrom: event.data.mailFrom, size: event.data.size, receivedAt: event.data.receivedAt };
    case 'MessageResubmitted':
    case 'QuotaExceeded':
      return { mailFrom: event.data.mailFrom, from: event.data.from, size: event.data.size };
    case 'Suppressed':
      return { mailFrom: event.data.mailFrom, from: event.data.from };
    case 'Deferred':
    case 'Delivered':
    case 'Bounced':
      return {};
  }
}

function changeOf(event: DeliveryReportEvent): RecipientChange {
  switch (event.type) {
    case 'MessageReceived':
      return { recipients: event.data.recipients, status: 'received', nextAttemptAt: null, entry: {} };
    case 'RelayDenied':
      return {
        recipients: event.data.recipients,
        status: 'denied',
        nextAttemptAt: null,
        entry: { reason: event.data.reason },
      };
    case 'MessageQueued':
    case 'MessageResubmitted':
      return {
        recipients: event.data.recipients,
        status: 'queued',
        nextAttemptAt: null,
        entry: { resendId: event.data.resendId },
      };
    case 'Deferred':
      return {
        recipients: [event.data.recipient],
        status: 'deferred',
        attempt: event.data.attempt,
        reply: event.data.remoteReply,
        mx: event.data.mx,
        nextAttemptAt: event.data.nextAttemptAt,
        entry: {
          reply: event.data.remoteReply,
          mx: event.data.mx,
          attempt: event.data.attempt,
          nextAttemptAt: event.data.nextAttemptAt,
        },
      };
    case 'Delivered':
      return {
        recipients: [event.data.recipient],
        status: 'delivered',
        attempt: event.data.attempt,
        reply: event.data.remoteReply,
        mx: event.data.mx,
        nextAttemptAt: null,
        entry: { reply: event.data.remoteReply, mx: event.data.mx, attempt: event.data.attempt },
      };
    case 'Bounced':
      // A DSN after Delivered lands here too: the recipient becomes bounced, its timeline keeps both.
      return {
        recipients: [event.data.recipient],
        status: 'bounced',
        attempt: event.data.attempt,
        reply: event.data.diagnostic,
        mx: event.data.mx,
        nextAttemptAt: null,
        bounceClass: event.data.bounceClass,
        statusCode: event.data.status,
        entry: {
          status: event.data.status,
          diagnostic: event.data.diagnostic,
          source: event.data.source,
          mx: event.data.mx,
          attempt: event.data.attempt,
        },
      };
    case 'Suppressed':
      return {
        recipients: [event.data.recipient],
        status: 'suppressed',
        nextAttemptAt: null,
        entry: { list: event.data.list },
      };
    case 'QuotaExceeded':
      return { recipients: event.data.recipients, status: 'quota-exceeded', nextAttemptAt: null, entry: {} };
  }
}

const later = (a: string, b: string): string => (Date.parse(b) > Date.parse(a) ? b : a);

/** Drops the keys whose value is undefined, so that the stored JSON has no nulls in their place. */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function evolveRecipient(
  current: RecipientState | undefined,
  recipient: string,
  change: RecipientChange,
  entry: TimelineEntry,
): RecipientState {
  return {
    recipient,
    status: change.status,
    // Events carry the attempt number: a count that only grows, never a counter to add to.
    attempts: Math.max(current?.attempts ?? 0, change.attempt ?? 0),
    lastReply: change.reply ?? current?.lastReply ?? null,
    mx: change.mx ?? current?.mx ?? null,
    nextAttemptAt: change.nextAttemptAt,
    bounceClass: change.bounceClass ?? current?.bounceClass ?? null,
    statusCode: change.statusCode ?? current?.statusCode ?? null,
    updatedAt: current ? later(current.updatedAt, entry.at) : entry.at,
    timeline: [...(current?.timeline ?? []), entry],
  };
}

/**
 * One event's effect on a message's report (undefined: the event is about no message, like the
 * RelayDenied of a client no account matched). The last event about a recipient sets its status;
 * an event already in a recipient's timeline (the same id published twice, which Kafka allows)
 * changes nothing. Without the MessageReceived (the projection started later) the report starts
 * from whatever event comes first: descriptive fields stay null until an event carries them, and
 * receivedAt is that event's time until one that knows it (MessageQueued.receivedAt) says so.
 */
export function evolveReport(
  state: MessageState | undefined,
  event: DeliveryReportEvent,
): MessageState | undefined {
  if (event.messageId === undefined || event.accountId === null) return state;
  const facts = factsOf(event);
  const change = changeOf(event);
  const entry: TimelineEntry = defined({
    at: event.occurredAt,
    type: event.type,
    eventId: event.id,
    ...change.entry,
  });
  const recipients = new Map(state?.recipients);
  for (const recipient of change.recipients) {
    const current = recipients.get(recipient);
    if (current?.timeline.some((e) => e.eventId === event.id)) continue;
    recipients.set(recipient, evolveRecipient(current, recipient, change, entry));
  }
  const status = messageStatusOf([...recipients.values()].map((r) => r.status));
  return {
    id: event.messageId,
    accountId: state?.accountId ?? event.accountId,
    // First known value wins: the MessageReceived, when seen, comes first.
    mailFrom: state?.mailFrom ?? facts.mailFrom ?? null,
    from: state?.from ?? facts.from ?? null,
    subject: state?.subject ?? facts.subject ?? null,
    size: state?.size ?? facts.size ?? null,
    recipientsCount: Math.max(state?.recipientsCount ?? 0, facts.recipientsCount ?? 0, recipients.size),
    status: status ?? state?.status ?? 'queued',
    receivedAt: facts.receivedAt ?? state?.receivedAt ?? event.occurredAt,
    updatedAt: state ? later(state.updatedAt, event.occurredAt) : event.occurredAt,
    recipients,
  };
}
