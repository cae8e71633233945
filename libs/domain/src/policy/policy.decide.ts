import { eventIdFor } from '../event-id.js';
import { createEvent, type RelayEvent } from '../event-types.js';
import type { Plan } from '../events/account.events.js';
import type {
  MessageReceived,
  MessageResubmitted,
  SuppressionList,
  Usage,
} from '../events/message.events.js';

/** A message the policy stage decides on: as received, or handed back by a resend. */
export type PolicyInput = MessageReceived | MessageResubmitted;

/** What the policy stage knows when it decides. */
export interface PolicyFacts {
  /** Recipients on one of the account's suppression lists, with the list. */
  readonly listed: ReadonlyMap<string, SuppressionList>;
  /** When the decision is made: the quota period. */
  readonly now: Date;
  /** The account's plan; absent means no limits (e.g. an account unknown to this process). */
  readonly plan?: Plan;
  /** What the account used so far in the period of `now`. */
  readonly usage?: Usage;
}

export interface PolicyDecision {
  readonly events: RelayEvent[];
  /** Usage of the period after this decision (what the queued recipients added). */
  readonly usage: Usage;
}

/** `YYYY-MM` of a time, in UTC: the quota period a recipient counts against. */
export const periodOf = (at: Date): string => at.toISOString().slice(0, 7);

interface Decision {
  readonly events: RelayEvent[];
  /** Recipients still to be decided by the next guard step. */
  readonly remaining: readonly string[];
}

const NO_USAGE: Usage = { messages: 0, bytes: 0 };

/**
 * Guard step: each recipient counts one message and the message's size against the month. A
 * recipient that would take the account past a limit is held back (QuotaExceeded, one event per
 * message listing them), unless the plan allows overage: then it goes on and counts as overage.
 */
function holdIfOverQuota(
  input: PolicyInput,
  recipients: readonly string[],
  facts: PolicyFacts,
): Decision & { readonly usage: Usage } {
  const plan = facts.plan;
  let usage = facts.usage ?? NO_USAGE;
  const size = input.data.size;
  const remaining: string[] = [];
  const held: string[] = [];
  for (const recipient of recipients) {
    const next = { messages: usage.messages + 1, bytes: usage.bytes + size };
    const over =
      plan !== undefined &&
      !plan.overageAllowed &&
      ((plan.monthlyMessageLimit !== null && next.messages > plan.monthlyMessageLimit) ||
        (plan.monthlyByteLimit !== null && next.bytes > plan.monthlyByteLimit));
    if (over) {
      held.push(recipient);
    } else {
      remaining.push(recipient);
      usage = next;
    }
  }
  if (held.length === 0 || !plan) return { events: [], remaining, usage };
  const exceeded = createEvent('QuotaExceeded', {
    id: eventIdFor(input.id, 'quota-exceeded'),
    accountId: input.accountId,
    ...(input.messageId ? { messageId: input.messageId } : {}),
    causationId: input.id,
    occurredAt: facts.now.toISOString(),
    data: {
      recipients: held,
      mailFrom: input.data.mailFrom,
      from: input.data.from,
      size,
      spoolKey: input.data.spoolKey,
      period: periodOf(facts.now),
      usage,
      limits: { messages: plan.monthlyMessageLimit, bytes: plan.monthlyByteLimit },
      smtpUtf8: input.data.smtpUtf8,
      eightBitMime: input.data.eightBitMime,
      ...(input.type === 'MessageResubmitted' ? { resendId: input.data.resendId } : {}),
    },
  });
  return { events: [exceeded], remaining, usage };
}

/** Guard step: a recipient on the Bounce or Unsubscribe list gets Suppressed and no delivery. */
function suppressIfRecipientListed(
  input: PolicyInput,
  recipients: readonly string[],
  facts: PolicyFacts,
): Decision {
  const events: RelayEvent[] = [];
  const remaining: string[] = [];
  for (const recipient of recipients) {
    const list = facts.listed.get(recipient);
    if (!list) {
      remaining.push(recipient);
      continue;
    }
    events.push(
      createEvent('Suppressed', {
        id: eventIdFor(input.id, 'suppressed', recipient),
        accountId: input.accountId,
        ...(input.messageId ? { messageId: input.messageId } : {}),
        causationId: input.id,
        occurredAt: facts.now.toISOString(),
        data: {
          recipient,
          list,
          mailFrom: input.data.mailFrom,
          from: input.data.from,
          spoolKey: input.data.spoolKey,
        },
      }),
    );
  }
  return { events, remaining };
}

/** Last step: whoever is left is cleared for delivery. */
function queueRemaining(input: PolicyInput, recipients: readonly string[], facts: PolicyFacts): RelayEvent[] {
  if (recipients.length === 0) return [];
  const receivedAt = input.type === 'MessageReceived' ? input.occurredAt : facts.now.toISOString();
  return [
    createEvent('MessageQueued', {
      id: eventIdFor(input.id, 'queued'),
      accountId: input.accountId,
      ...(input.messageId ? { messageId: input.messageId } : {}),
      causationId: input.id,
      occurredAt: facts.now.toISOString(),
      data: {
        recipients,
        mailFrom: input.data.mailFrom,
        size: input.data.size,
        spoolKey: input.data.spoolKey,
        period: periodOf(facts.now),
        smtpUtf8: input.data.smtpUtf8,
        eightBitMime: input.data.eightBitMime,
        receivedAt,
        ...(input.type === 'MessageResubmitted' ? { resendId: input.data.resendId } : {}),
      },
    }),
  ];
}

/**
 * The policy stage's decision for one message: the guard steps in order, each taking the
 * recipients the previous one left. Event ids derive from the input's id, so deciding the same
 * input again yields the same events (a redelivered cause is taken once).
 */
export function decidePolicy(input: PolicyInput, facts: PolicyFacts): PolicyDecision {
  const suppression = suppressIfRecipientListed(input, input.data.recipients, facts);
  const quota = holdIfOverQuota(input, suppression.remaining, facts);
  return {
    events: [...suppression.events, ...quota.events, ...queueRemaining(input, quota.remaining, facts)],
    usage: quota.usage,
  };
}
