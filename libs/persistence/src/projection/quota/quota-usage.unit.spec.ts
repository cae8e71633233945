import { describe, expect, it } from 'vitest';
import { createEvent, type EventOfType } from '@relay/domain';
import { queuedCounts } from './quota-usage.projector.js';
import { overageOf } from './quota-usage.repository.js';

const ACCOUNT = '3970b2cf-531e-467c-ace3-b94552d5dcf5';

function queued(
  recipients: readonly string[],
  fields: { size?: number; period?: string; accountId?: string | null } = {},
): EventOfType<'MessageQueued'> {
  return createEvent('MessageQueued', {
    accountId: fields.accountId === undefined ? ACCOUNT : fields.accountId,
    messageId: 'm1',
    data: {
      recipients,
      mailFrom: 'app@example.com',
      size: fields.size ?? 1_000,
      spoolKey: 'spool/m1',
      period: fields.period ?? '2025-03',
      smtpUtf8: false,
      eightBitMime: false,
      receivedAt: '2025-03-14T09:00:00.000Z',
    },
  });
}

describe('queuedCounts', () => {
  it('counts each recipient one message and the size, in the event’s period', () => {
    const event = queued(['a@example.org', 'b@example.org', 'c@example.org'], {
      size: 812,
      period: '2025-02',
    });
    expect(queuedCounts([event])).toEqual([
      { event_id: event.id, account_id: ACCOUNT, period: '2025-02', messages: 3, bytes: 2_436 },
    ]);
  });

  it('counts an event repeated in the batch once, and skips events with no account or no recipient', () => {
    const event = queued(['a@example.org']);
    const other = queued(['b@example.org'], { size: 5 });
    expect(
      queuedCounts([event, queued([]), event, queued(['x@example.org'], { accountId: null }), other]),
    ).toEqual([
      { event_id: event.id, account_id: ACCOUNT, period: '2025-03', messages: 1, bytes: 1_000 },
      { event_id: other.id, account_id: ACCOUNT, period: '2025-03', messages: 1, bytes: 5 },
    ]);
  });
});

describe('overageOf', () => {
  it('is what was used past each limit, never negative', () => {
    expect(overageOf({ messages: 12, bytes: 900 }, { messages: 10, bytes: 1_000 })).toEqual({
      messages: 2,
      bytes: 0,
    });
    expect(overageOf({ messages: 10, bytes: 1_000 }, { messages: 10, bytes: 1_000 })).toEqual({
      messages: 0,
      bytes: 0,
    });
  });

  it('is 0 for an unlimited limit', () => {
    expect(overageOf({ messages: 1e6, bytes: 1e12 }, { messages: null, bytes: 1e9 })).toEqual({
      messages: 0,
      bytes: 1e12 - 1e9,
    });
    expect(overageOf({ messages: 5, bytes: 5 }, { messages: null, bytes: null })).toEqual({
      messages: 0,
      bytes: 0,
    });
  });
});
