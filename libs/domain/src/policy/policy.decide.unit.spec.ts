import { describe, expect, it } from 'vitest';
import { createEvent } from '../event-types.js';
import { decidePolicy } from './policy.decide.js';

const received = createEvent('MessageReceived', {
  id: 'a9a22297-bcc8-4067-babd-52198f425e64',
  accountId: 'acct-1',
  messageId: 'm1',
  occurredAt: '2026-11-29T10:00:00.000Z',
  data: {
    mailFrom: 'bounces@example.com',
    recipients: ['listed@example.org', 'clean@example.org', 'gone@example.net'],
    from: 'news@example.com',
    headerMessageId: 'x@example.com',
    size: 1234,
    spoolKey: '2026-11-29/m1',
    clientIp: '127.0.0.1',
    auth: 'smtp-auth',
    tls: true,
    smtpUtf8: false,
    eightBitMime: false,
  },
});
const now = new Date('2026-11-29T10:00:01.000Z');

describe('decidePolicy', () => {
  it('given no listed recipient, when a message arrives, then all are queued for the month', () => {
    const { events } = decidePolicy(received, { listed: new Map(), now });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'MessageQueued',
      causationId: received.id,
      messageId: 'm1',
      data: { recipients: received.data.recipients, period: '2026-11', receivedAt: received.occurredAt },
    });
  });

  it('given listed recipients, then they are Suppressed with their list and the rest queued', () => {
    const listed = new Map([
      ['listed@example.org', 'bounce' as const],
      ['gone@example.net', 'unsubscribe' as const],
    ]);
    const { events } = decidePolicy(received, { listed, now });
    expect(
      events.map((e) => [
        e.type,
        e.type === 'Suppressed' ? e.data.list : e.type === 'MessageQueued' ? e.data.recipients : undefined,
      ]),
    ).toEqual([
      ['Suppressed', 'bounce'],
      ['Suppressed', 'unsubscribe'],
      ['MessageQueued', ['clean@example.org']],
    ]);
  });

  it('given every recipient listed, then nothing is queued', () => {
    const listed = new Map(received.data.recipients.map((r) => [r, 'bounce' as const]));
    expect(decidePolicy(received, { listed, now }).events.every((e) => e.type === 'Suppressed')).toBe(true);
  });

  it('decides the same input the same way, with the same event ids', () => {
    const listed = new Map([['listed@example.org', 'bounce' as const]]);
    const ids = (): string[] => decidePolicy(received, { listed, now }).events.map((e) => e.id);
    expect(ids()).toEqual(ids());
  });
});
