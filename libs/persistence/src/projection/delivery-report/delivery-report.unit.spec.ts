import { describe, expect, it } from 'vitest';
import { createEvent } from '@relay/domain';
import {
  evolveReport,
  isMessageStatus,
  messageStatusOf,
  type MessageStatus,
  type RecipientStatus,
} from './delivery-report.js';

describe('messageStatusOf', () => {
  it.each<[RecipientStatus[], MessageStatus | undefined]>([
    [[], undefined],
    [['received'], 'queued'],
    [['received', 'queued'], 'queued'],
    [['queued', 'delivered'], 'queued'],
    [['deferred', 'queued'], 'deferred'],
    [['deferred', 'delivered'], 'deferred'],
    [['delivered'], 'delivered'],
    [['delivered', 'delivered'], 'delivered'],
    [['delivered', 'bounced'], 'partially-delivered'],
    [['delivered', 'suppressed'], 'partially-delivered'],
    [['delivered', 'quota-exceeded'], 'partially-delivered'],
    [['bounced'], 'bounced'],
    [['bounced', 'suppressed'], 'bounced'],
    [['suppressed'], 'suppressed'],
    [['quota-exceeded'], 'held'],
    [['quota-exceeded', 'bounced'], 'held'],
    [['quota-exceeded', 'suppressed'], 'held'],
    [['denied', 'denied'], 'denied'],
  ])('%j -> %s', (recipients, expected) => {
    expect(messageStatusOf(recipients)).toBe(expected);
  });
});

describe('isMessageStatus', () => {
  it('takes the aggregate statuses only', () => {
    expect(isMessageStatus('partially-delivered')).toBe(true);
    expect(isMessageStatus('held')).toBe(true);
    expect(isMessageStatus('quota-exceeded')).toBe(false);
    expect(isMessageStatus('Delivered')).toBe(false);
  });
});

describe('evolveReport', () => {
  const accountId = '3970b2cf-531e-467c-ace3-b94552d5dcf5';
  const deferred = createEvent('Deferred', {
    accountId,
    messageId: 'm1',
    occurredAt: '2025-03-14T09:01:00.000Z',
    data: {
      recipient: 'ada@example.org',
      remoteReply: '451 4.3.0 Try later',
      attempt: 2,
      nextAttemptAt: '2025-03-14T09:06:00.000Z',
    },
  });
  const queued = createEvent('MessageQueued', {
    accountId,
    messageId: 'm1',
    occurredAt: '2025-03-14T09:02:00.000Z',
    data: {
      recipients: ['ada@example.org'],
      mailFrom: 'app@example.com',
      size: 900,
      spoolKey: 'k',
      period: '2025-03',
      smtpUtf8: false,
      eightBitMime: false,
      receivedAt: '2025-03-14T09:00:00.000Z',
    },
  });

  it('starts a report from a later event, and takes receivedAt from the first event that knows it', () => {
    const first = evolveReport(undefined, deferred);
    expect(first).toMatchObject({
      id: 'm1',
      mailFrom: null,
      size: null,
      status: 'deferred',
      receivedAt: '2025-03-14T09:01:00.000Z',
      recipientsCount: 1,
    });
    expect(first?.recipients.get('ada@example.org')).toMatchObject({ attempts: 2, mx: null });
    const second = evolveReport(first, queued);
    expect(second).toMatchObject({
      mailFrom: 'app@example.com',
      size: 900,
      status: 'queued',
      receivedAt: '2025-03-14T09:00:00.000Z',
      updatedAt: '2025-03-14T09:02:00.000Z',
    });
    // Attempts only grow: a requeue does not reset them.
    expect(second?.recipients.get('ada@example.org')?.attempts).toBe(2);
  });

  it('changes nothing for an event it has already applied (the same id twice)', () => {
    const once = evolveReport(undefined, deferred);
    expect(evolveReport(once, deferred)).toEqual(once);
  });

  it('ignores events about no message', () => {
    const denied = createEvent('RelayDenied', {
      accountId: null,
      data: {
        reason: 'not-authenticated',
        clientIp: '198.51.100.1',
        mailFrom: '',
        recipients: ['x@example.org'],
      },
    });
    expect(evolveReport(undefined, denied)).toBeUndefined();
  });
});
