import { eventIdFor } from '../event-id.js';
import { createEvent, type RelayEvent } from '../event-types.js';
import type { MessageReceived, MessageResubmitted, SuppressionList } from '../events/message.events.js';

/** A message the policy stage decides on: as received, or handed back by a resend. */
export type PolicyInput = MessageReceived | MessageResubmitted;

/** What the policy stage knows when it decides. */
export interface PolicyFacts {
  /** Recipients on one of the account's suppression lists, with the list. */
  readonly listed: ReadonlyMap<string, SuppressionList>;
  /** When the decision is made: the quota period. */
  readonly now: Date;
}

/** `YYYY-MM` of a time, in UTC: the quota period a recipient counts against. */
export const periodOf = (at: Date): string => at.toISOString().slice(0, 7);

interface Decision {
  readonly events: RelayEvent[];
  /** Recipients still to be decided by the next guard step. */
  readonly remaining: readonly string[];
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
export function decidePolicy(input: PolicyInput, facts: PolicyFacts): RelayEvent[] {
  const suppression = suppressIfRecipientListed(input, input.data.recipients, facts);
  return [...suppression.events, ...queueRemaining(input, suppression.remaining, facts)];
}
