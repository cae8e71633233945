import { createEvent, eventIdFor, type Bounced } from '@relay/domain';
import {
  classifyDeliveryStatus,
  failedRecipients,
  recipientTag,
  type DeliveryStatusNotification,
  type DsnRecipient,
  type VerpToken,
} from '@relay/delivery';
import type { DeliveredMessage } from './delivery-lookup.port.js';

export interface DsnBounceInput {
  /** The VERP token of the address the report came to. */
  readonly token: VerpToken;
  readonly message: DeliveredMessage;
  readonly report: DeliveryStatusNotification;
  /** Identifies the report (a hash of its bytes): the same report again yields the same event ids. */
  readonly reportId: string;
}

export interface DsnBounceDecision {
  readonly bounced: readonly Bounced[];
  /** Failed recipients of the report that match no recipient of the message. */
  readonly unmatched: readonly DsnRecipient[];
}

/** RFC 5321 2.4: only the domain is case-insensitive, but no mailbox in practice differs by case. */
const sameAddress = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/**
 * The message recipient a failed report entry is about. A VERP tag (single-recipient transaction)
 * names it outright, even when the report shows where it was forwarded to; without one, the
 * report's Original-Recipient (the ORCPT the relay sent) and then Final-Recipient must be one of
 * the message's recipients, so a report can never bounce an address the message was not sent to.
 */
function resolveRecipient(
  entry: DsnRecipient,
  token: VerpToken,
  recipients: readonly string[],
): string | undefined {
  if (token.recipientTag !== undefined) {
    const tagged = recipients.find((r) => recipientTag(r) === token.recipientTag);
    if (tagged !== undefined) return tagged;
  }
  for (const reported of [entry.originalRecipient, entry.finalRecipient]) {
    if (reported === undefined) continue;
    const match = recipients.find((r) => sameAddress(r, reported));
    if (match !== undefined) return match;
  }
  return undefined;
}

/**
 * Bounced (source: dsn) for every recipient a delivery status report says failed; delayed,
 * delivered, relayed and expanded entries are no bounce. One event per recipient, whatever the
 * number of report entries that resolve to it (an alias expanded to several failed addresses).
 */
export function decideDsnBounces(input: DsnBounceInput): DsnBounceDecision {
  const { token, message, report, reportId } = input;
  const bounced = new Map<string, Bounced>();
  const unmatched: DsnRecipient[] = [];
  for (const entry of failedRecipients(report)) {
    const recipient = resolveRecipient(entry, token, message.recipients);
    if (recipient === undefined) {
      unmatched.push(entry);
      continue;
    }
    if (bounced.has(recipient.toLowerCase())) continue;
    const classified = classifyDeliveryStatus(entry);
    bounced.set(
      recipient.toLowerCase(),
      createEvent('Bounced', {
        id: eventIdFor(reportId, token.messageId, recipient.toLowerCase(), 'bounced'),
        accountId: message.accountId,
        messageId: token.messageId,
        data: {
          recipient,
          bounceClass: classified.bounceClass,
          category: classified.category,
          status: classified.enhancedCode,
          diagnostic: entry.diagnosticCode ?? `Action: failed; Status: ${entry.status ?? 'none'}`,
          source: 'dsn',
          // The schema counts attempts from 1; the report follows the attempt the remote accepted.
          attempt: 1,
          ...(entry.remoteMta === undefined ? {} : { mx: entry.remoteMta }),
        },
      }),
    );
  }
  return { bounced: [...bounced.values()], unmatched };
}
