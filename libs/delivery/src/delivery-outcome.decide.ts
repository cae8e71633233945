import { createEvent, type RelayEvent } from '@relay/domain';
import { classifySmtpReply } from './bounce-classifier.js';
import { nextAttemptAt, type RetryPolicy } from './retry-schedule.js';
import type { RecipientResult } from './smtp-transaction.js';

/** What the attempt was about, for the events it leads to. */
export interface AttemptContext {
  readonly messageId: string;
  readonly accountId: string;
  readonly receivedAt: Date;
  /** Attempts made before this one. */
  readonly previousAttempts: number;
  readonly now: Date;
}

export type RecipientOutcome =
  | { readonly recipient: string; readonly state: 'delivered' | 'bounced'; readonly event: RelayEvent }
  | {
      readonly recipient: string;
      readonly state: 'pending';
      readonly nextAttemptAt: Date;
      readonly event: RelayEvent;
    };

/** A failure with no usable SMTP answer for the recipient: what the attempt says instead. */
export type AttemptFailure =
  | { readonly kind: 'temporary'; readonly reason: string; readonly host?: string }
  | {
      readonly kind: 'permanent';
      readonly reason: string;
      readonly enhancedCode: string;
      readonly category: string;
    };

/**
 * Decides, for one recipient, what an attempt's result means: Delivered on 2xx; Deferred on a
 * temporary failure (4xx, no answer) with the next attempt from the retry policy, or Bounced as
 * expired when the message is too old for another; Bounced on 5xx, classified hard or soft.
 */
export function decideOutcome(
  result: RecipientResult | { readonly recipient: string; readonly failure: AttemptFailure },
  context: AttemptContext,
  policy: RetryPolicy,
): RecipientOutcome {
  const attempt = context.previousAttempts + 1;
  const base = {
    accountId: context.accountId,
    messageId: context.messageId,
    occurredAt: context.now.toISOString(),
  };
  const { recipient } = result;

  const deferOrExpire = (remoteReply: string, mx?: string): RecipientOutcome => {
    const next = nextAttemptAt(policy, attempt, context.receivedAt, context.now);
    if (next) {
      return {
        recipient,
        state: 'pending',
        nextAttemptAt: next,
        event: createEvent('Deferred', {
          ...base,
          data: { recipient, remoteReply, attempt, nextAttemptAt: next.toISOString(), ...(mx ? { mx } : {}) },
        }),
      };
    }
    return bounce({
      bounceClass: 'soft',
      category: 'expired',
      status: '4.4.7',
      diagnostic: remoteReply,
      source: 'expired',
      mx,
    });
  };

  const bounce = (fields: {
    bounceClass: 'hard' | 'soft';
    category: string;
    status: string;
    diagnostic: string;
    source: 'smtp' | 'expired' | 'routing';
    mx: string | undefined;
  }): RecipientOutcome => ({
    recipient,
    state: 'bounced',
    event: createEvent('Bounced', {
      ...base,
      data: {
        recipient,
        bounceClass: fields.bounceClass,
        category: fields.category,
        status: fields.status,
        diagnostic: fields.diagnostic,
        source: fields.source,
        attempt,
        ...(fields.mx ? { mx: fields.mx } : {}),
      },
    }),
  });

  if ('failure' in result) {
    const { failure } = result;
    if (failure.kind === 'temporary') return deferOrExpire(failure.reason, failure.host);
    return bounce({
      bounceClass: 'hard',
      category: failure.category,
      status: failure.enhancedCode,
      diagnostic: failure.reason,
      source: 'routing',
      mx: undefined,
    });
  }
  switch (result.outcome) {
    case 'accepted':
      return {
        recipient,
        state: 'delivered',
        event: createEvent('Delivered', {
          ...base,
          data: {
            recipient,
            mx: result.host,
            remoteReply: result.reply,
            attempt,
            latencyMs: Math.max(0, context.now.getTime() - context.receivedAt.getTime()),
          },
        }),
      };
    case 'failed':
      return deferOrExpire(result.reason, result.host);
    case 'rejected': {
      const verdict = classifySmtpReply({ code: result.code, text: result.reply });
      if (verdict.outcome !== 'bounced') return deferOrExpire(result.reply, result.host);
      return bounce({
        bounceClass: verdict.bounceClass ?? 'hard',
        category: verdict.category,
        status: verdict.enhancedCode,
        diagnostic: result.reply,
        source: 'smtp',
        mx: result.host,
      });
    }
  }
}
