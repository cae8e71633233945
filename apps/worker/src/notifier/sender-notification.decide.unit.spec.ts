import { describe, expect, it } from 'vitest';
import {
  createEvent,
  type Bounced,
  type QuotaExceeded,
  type RelayDenied,
  type Suppressed,
} from '@relay/domain';
import { newRelayMessageId } from '@relay/domain';
import {
  BOUNCE_LIST_SENTENCE,
  decideNotification,
  deliveryKey,
  groupByMessage,
  UNSUBSCRIBE_LIST_SENTENCE,
  type NotifierFacts,
  type SenderNotification,
} from './sender-notification.decide.js';
import { notificationText } from './sender-notification.text.js';

const ACCOUNT = '5b0c8c1e-3f0e-4a57-9d2b-0c7e1b2a3d4e';
const ARRIVED = new Date('2026-11-29T01:40:29.123Z');
const MESSAGE = newRelayMessageId(ARRIVED.getTime());
const noFacts: NotifierFacts = {
  notificationIds: new Set(),
  originals: new Map(),
  bounceNotificationAccounts: new Set(),
};

const suppressed = (
  list: 'bounce' | 'unsubscribe',
  recipient = 'ann@example.org',
  mailFrom = 'bounces@shop.example',
): Suppressed =>
  createEvent('Suppressed', {
    accountId: ACCOUNT,
    messageId: MESSAGE,
    data: { recipient, list, mailFrom, from: 'orders@shop.example', spoolKey: `2026-11-29/${MESSAGE}` },
  });

const relayDenied = (
  accountId: string | null,
  reason: RelayDenied['data']['reason'] = 'from-not-allowed',
): RelayDenied =>
  createEvent('RelayDenied', {
    accountId,
    messageId: MESSAGE,
    data: {
      reason,
      clientIp: '203.0.113.9',
      mailFrom: 'app@shop.example',
      recipients: ['ann@example.org', 'bob@example.org'],
      from: 'ceo@other.example',
      fromName: 'The CEO',
      subject: 'Invoice',
    },
  });

const bounced = (messageId = MESSAGE): Bounced =>
  createEvent('Bounced', {
    accountId: ACCOUNT,
    messageId,
    data: {
      recipient: 'bob@example.org',
      bounceClass: 'hard',
      category: 'invalid-recipient',
      status: '5.1.1',
      diagnostic: '550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown',
      source: 'smtp',
      mx: 'mx.example.org',
      attempt: 1,
    },
  });

const quotaExceeded = (): QuotaExceeded =>
  createEvent('QuotaExceeded', {
    accountId: ACCOUNT,
    messageId: MESSAGE,
    data: {
      recipients: ['ann@example.org', 'bob@example.org'],
      mailFrom: 'bounces@shop.example',
      from: 'orders@shop.example',
      size: 2048,
      spoolKey: `2026-11-29/${MESSAGE}`,
      period: '2026-11',
      usage: { messages: 5, bytes: 10_240 },
      limits: { messages: 5, bytes: null },
      smtpUtf8: false,
      eightBitMime: false,
    },
  });

function notified(decision: ReturnType<typeof decideNotification>): SenderNotification {
  if (!decision.notify) throw new Error(`expected a notification, got: ${decision.why}`);
  return decision.notification;
}

const why = (decision: ReturnType<typeof decideNotification>): string | undefined =>
  decision.notify ? undefined : decision.why;

describe('decideNotification', () => {
  it('answers a Bounce-list suppression to the envelope sender', () => {
    const n = notified(decideNotification(suppressed('bounce'), noFacts));
    expect(n).toMatchObject({
      cause: { reason: 'suppressed-bounce' },
      notified: 'bounces@shop.example',
      messageId: MESSAGE,
      spoolKey: `2026-11-29/${MESSAGE}`,
      recipients: [{ recipient: 'ann@example.org', status: '5.7.1' }],
    });
    expect(n.recipients[0]?.diagnosticCode?.text).toBe(BOUNCE_LIST_SENTENCE);
  });

  it("answers an Unsubscribe-list suppression to the message's From address", () => {
    const n = notified(decideNotification(suppressed('unsubscribe'), noFacts));
    expect(n.notified).toBe('orders@shop.example');
    expect(n.cause.reason).toBe('suppressed-unsubscribe');
  });

  it('takes the Arrival-Date from the relay message id', () => {
    const n = notified(decideNotification(suppressed('bounce'), noFacts));
    expect(n.arrivalDate).toEqual(ARRIVED);
  });

  it("takes the event time as Arrival-Date for a message id that is not the relay's", () => {
    const event = { ...suppressed('bounce'), messageId: 'legacy-id' };
    expect(notified(decideNotification(event, noFacts)).arrivalDate).toEqual(new Date(event.occurredAt));
  });

  it('answers a RelayDenied of a known account to the envelope sender, for every recipient', () => {
    const n = notified(decideNotification(relayDenied(ACCOUNT), noFacts));
    expect(n.notified).toBe('app@shop.example');
    expect(n.spoolKey).toBeUndefined();
    expect(n.recipients.map((r) => r.recipient)).toEqual(['ann@example.org', 'bob@example.org']);
    expect(n.recipients[0]?.diagnosticCode).toEqual({
      type: 'smtp',
      text: '550 5.7.1 Relaying denied for [203.0.113.9] / "The CEO"',
    });
  });

  it('never answers a client no account matched (backscatter), nor a not-authenticated refusal', () => {
    expect(why(decideNotification(relayDenied(null, 'not-authenticated'), noFacts))).toMatch(/backscatter/);
    expect(why(decideNotification(relayDenied(ACCOUNT, 'not-authenticated'), noFacts))).toMatch(
      /not-authenticated/,
    );
  });

  it('answers a Bounced only when the account asks for bounce notifications', () => {
    const original = {
      mailFrom: 'bounces@shop.example',
      spoolKey: 'k',
      receivedAt: new Date('2026-11-29T01:00:00Z'),
    };
    const facts = { ...noFacts, originals: new Map([[deliveryKey(MESSAGE, 'bob@example.org'), original]]) };
    expect(why(decideNotification(bounced(), facts))).toMatch(/does not ask/);
    const n = notified(
      decideNotification(bounced(), { ...facts, bounceNotificationAccounts: new Set([ACCOUNT]) }),
    );
    expect(n).toMatchObject({
      notified: 'bounces@shop.example',
      spoolKey: 'k',
      arrivalDate: original.receivedAt,
      recipients: [
        {
          recipient: 'bob@example.org',
          status: '5.1.1',
          remoteMta: 'mx.example.org',
          diagnosticCode: {
            type: 'smtp',
            text: '550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown',
          },
        },
      ],
    });
  });

  it('never answers a Bounced of a notification, nor of a message with the null sender', () => {
    const asks = { ...noFacts, bounceNotificationAccounts: new Set([ACCOUNT]) };
    expect(why(decideNotification(bounced(), { ...asks, notificationIds: new Set([MESSAGE]) }))).toMatch(
      /itself a notification/,
    );
    const nullSender = { mailFrom: '', spoolKey: 'k', receivedAt: new Date() };
    expect(
      why(
        decideNotification(bounced(), {
          ...asks,
          originals: new Map([[deliveryKey(MESSAGE, 'bob@example.org'), nullSender]]),
        }),
      ),
    ).toBe('null envelope sender');
    expect(why(decideNotification(bounced(), asks))).toMatch(/not on the delivery queue/);
  });

  it('never answers mail with the null envelope sender, whatever the list', () => {
    expect(why(decideNotification(suppressed('bounce', 'ann@example.org', ''), noFacts))).toBe(
      'null envelope sender',
    );
    expect(why(decideNotification(suppressed('unsubscribe', 'ann@example.org', ''), noFacts))).toBe(
      'null envelope sender',
    );
  });

  it('answers QuotaExceeded once per message, listing its held recipients', () => {
    const n = notified(decideNotification(quotaExceeded(), noFacts));
    expect(n.notified).toBe('bounces@shop.example');
    expect(n.recipients.map((r) => r.recipient)).toEqual(['ann@example.org', 'bob@example.org']);
  });
});

describe('groupByMessage', () => {
  it('puts the suppressed recipients of one message into one report per reason', () => {
    const all = [
      suppressed('bounce', 'ann@example.org'),
      suppressed('bounce', 'bob@example.org'),
      suppressed('bounce', 'ann@example.org'),
      suppressed('unsubscribe', 'eve@example.org'),
    ].map((e) => notified(decideNotification(e, noFacts)));
    const groups = groupByMessage(all);
    expect(groups.map((g) => [g.cause.reason, g.recipients.map((r) => r.recipient)])).toEqual([
      ['suppressed-bounce', ['ann@example.org', 'bob@example.org']],
      ['suppressed-unsubscribe', ['eve@example.org']],
    ]);
  });
});

describe('notificationText', () => {
  const text = (n: SenderNotification): string[] =>
    notificationText(n, { subject: 'Your order' }, 'relay.test').text.split('\n');

  it('holds the exact sentences on lines of their own', () => {
    expect(text(notified(decideNotification(suppressed('bounce'), noFacts)))).toContain(BOUNCE_LIST_SENTENCE);
    expect(text(notified(decideNotification(suppressed('unsubscribe'), noFacts)))).toContain(
      UNSUBSCRIBE_LIST_SENTENCE,
    );
    const denied = text(notified(decideNotification(relayDenied(ACCOUNT), noFacts)));
    expect(denied).toContain('Relaying denied for [203.0.113.9] / "The CEO"');
    expect(denied.join('\n')).toMatch(/headers attached below are rebuilt/);
  });

  it('falls back to the From address when the refused message had no display name', () => {
    const event = relayDenied(ACCOUNT);
    const { fromName: _dropped, ...data } = event.data;
    const n = notified(decideNotification({ ...event, data }, noFacts));
    expect(text(n)).toContain('Relaying denied for [203.0.113.9] / "ceo@other.example"');
  });

  it('tells an over-quota sender the period, usage and limit', () => {
    const lines = text(notified(decideNotification(quotaExceeded(), noFacts))).join('\n');
    expect(lines).toContain('over its monthly sending limit');
    expect(lines).toContain('Messages:   5 of 5 messages');
    expect(lines).toContain('Size:       10240 bytes (no limit)');
    expect(lines).toContain('  <ann@example.org>\n  <bob@example.org>');
  });

  it('gives the remote reply of a bounce, like an MTA does', () => {
    const original = { mailFrom: 'bounces@shop.example', spoolKey: 'k', receivedAt: new Date() };
    const n = notified(
      decideNotification(bounced(), {
        ...noFacts,
        originals: new Map([[deliveryKey(MESSAGE, 'bob@example.org'), original]]),
        bounceNotificationAccounts: new Set([ACCOUNT]),
      }),
    );
    const { subject, text: body } = notificationText(n, {}, 'relay.test');
    expect(subject).toBe('Undelivered Mail Returned to Sender');
    expect(body).toContain(
      '<bob@example.org>: 550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown (host mx.example.org)',
    );
  });
});
