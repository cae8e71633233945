import { describe, expect, it } from 'vitest';
import { recipientTag, type DeliveryStatusNotification, type DsnRecipient } from '@relay/delivery';
import { decideDsnBounces } from './dsn-bounces.decide.js';

const MESSAGE_ID = '5f2a9c01e4b7d3a6';
const message = {
  accountId: 'acct-1',
  recipients: ['Ada@example.org', 'grace@example.net', 'linus@example.com'],
};
const report = (...recipients: DsnRecipient[]): DeliveryStatusNotification => ({
  reportingMta: 'mx.example.org',
  recipients,
});
const failed = (fields: Partial<DsnRecipient>): DsnRecipient => ({
  action: 'failed',
  status: '5.1.1',
  diagnosticType: 'smtp',
  diagnosticCode: '550 5.1.1 User unknown',
  ...fields,
});

describe('decideDsnBounces', () => {
  it('bounces the tagged recipient, whatever address the report names (a forward)', () => {
    const { bounced, unmatched } = decideDsnBounces({
      token: { messageId: MESSAGE_ID, recipientTag: recipientTag('ada@example.org') },
      message,
      report: report(
        failed({ finalRecipient: 'ada.lovelace@forward.example', remoteMta: 'mx.forward.example' }),
      ),
      reportId: 'r1',
    });
    expect(unmatched).toEqual([]);
    expect(bounced.map((e) => ({ accountId: e.accountId, messageId: e.messageId, data: e.data }))).toEqual([
      {
        accountId: 'acct-1',
        messageId: MESSAGE_ID,
        data: {
          recipient: 'Ada@example.org',
          bounceClass: 'hard',
          category: 'invalid-recipient',
          status: '5.1.1',
          diagnostic: '550 5.1.1 User unknown',
          source: 'dsn',
          attempt: 1,
          mx: 'mx.forward.example',
        },
      },
    ]);
  });

  it('without a tag, matches Original-Recipient, then Final-Recipient, ignoring case; others are unmatched', () => {
    const stranger = failed({ finalRecipient: 'stranger@example.org' });
    const { bounced, unmatched } = decideDsnBounces({
      token: { messageId: MESSAGE_ID },
      message,
      report: report(
        failed({ originalRecipient: 'GRACE@example.net', finalRecipient: 'grace@mailbox.example' }),
        failed({
          finalRecipient: 'linus@example.com',
          status: '5.2.2',
          diagnosticCode: '552 5.2.2 Mailbox full',
        }),
        { finalRecipient: 'ada@example.org', action: 'delayed', status: '4.4.1' },
        stranger,
      ),
      reportId: 'r2',
    });
    expect(bounced.map((e) => [e.data.recipient, e.data.category, e.data.bounceClass])).toEqual([
      ['grace@example.net', 'invalid-recipient', 'hard'],
      ['linus@example.com', 'mailbox-full', 'soft'],
    ]);
    expect(unmatched).toEqual([stranger]);
  });

  it('bounces a recipient once however many failed entries resolve to it', () => {
    const { bounced } = decideDsnBounces({
      token: { messageId: MESSAGE_ID, recipientTag: recipientTag('ada@example.org') },
      message,
      report: report(
        failed({ finalRecipient: 'a1@alias.example' }),
        failed({ finalRecipient: 'a2@alias.example' }),
      ),
      reportId: 'r3',
    });
    expect(bounced).toHaveLength(1);
  });

  it('gives the same event ids for the same report, and other ids for another report', () => {
    const input = {
      token: { messageId: MESSAGE_ID, recipientTag: recipientTag('ada@example.org') },
      message,
      report: report(failed({ finalRecipient: 'ada@example.org' })),
    };
    const first = decideDsnBounces({ ...input, reportId: 'same' }).bounced[0]?.id;
    expect(decideDsnBounces({ ...input, reportId: 'same' }).bounced[0]?.id).toBe(first);
    expect(decideDsnBounces({ ...input, reportId: 'other' }).bounced[0]?.id).not.toBe(first);
  });

  it('is a soft expired bounce when the remote gave up after temporary failures', () => {
    const { bounced } = decideDsnBounces({
      token: { messageId: MESSAGE_ID, recipientTag: recipientTag('ada@example.org') },
      message,
      report: report(
        failed({
          finalRecipient: 'ada@example.org',
          status: '4.4.1',
          diagnosticType: 'X-Postfix',
          diagnosticCode: 'connect to mx.example.org[192.0.2.1]:25: Connection refused',
        }),
      ),
      reportId: 'r4',
    });
    expect(bounced[0]?.data).toMatchObject({ bounceClass: 'soft', category: 'expired', status: '4.4.1' });
  });

  it('falls back to a generic diagnostic when the report has none', () => {
    const { bounced } = decideDsnBounces({
      token: { messageId: MESSAGE_ID },
      message,
      report: report({ finalRecipient: 'ada@example.org', action: 'failed', status: '5.1.1' }),
      reportId: 'r5',
    });
    expect(bounced[0]?.data.diagnostic).toBe('Action: failed; Status: 5.1.1');
  });
});
