import libmime from 'libmime';
import { describe, expect, it } from 'vitest';
import { buildDeliveryStatusReport, type DeliveryStatusReport } from './delivery-status-report.js';
import { parseDeliveryStatusNotification } from './dsn-parser.js';

interface Part {
  readonly headers: string;
  readonly body: string;
}

/** A plain MIME split: top headers, then the parts between the boundary lines (RFC 2046 5.1.1). */
function split(raw: Buffer): { headers: string; boundary: string; parts: Part[] } {
  const text = raw.toString('utf8');
  const headEnd = text.indexOf('\r\n\r\n');
  const headers = text.slice(0, headEnd);
  const boundary = /boundary="([^"]+)"/.exec(headers)?.[1] ?? '';
  const body = text.slice(headEnd + 4);
  // Each delimiter is CRLF "--" boundary; the last one ends in "--" (the close delimiter).
  const sections = `\r\n${body}`.split(`\r\n--${boundary}`).slice(1);
  expect(sections.at(-1)?.startsWith('--')).toBe(true);
  const parts = sections.slice(0, -1).map((section) => {
    const content = section.slice(2);
    const end = content.indexOf('\r\n\r\n');
    return { headers: content.slice(0, end), body: content.slice(end + 4) };
  });
  return { headers, boundary, parts };
}

const header = (block: string, name: string): string | undefined =>
  new RegExp(`^${name}:[ \\t]*(.*(?:\\r\\n[ \\t].*)*)`, 'im').exec(block)?.[1]?.replace(/\r\n[ \t]+/g, ' ');

const base: DeliveryStatusReport = {
  reportingMta: 'relay.example.net',
  to: 'sender@shop.example',
  subject: 'Undelivered Mail: recipient is on the Bounce list',
  date: new Date('2026-11-29T01:40:31Z'),
  messageId: 'mk3x9p2a0f1e2d3c4b5a69788@relay.example.net',
  arrivalDate: new Date('2026-11-29T01:40:29Z'),
  text:
    'Your message was not sent to the following recipient:\n\n  <ann@example.org>\n\n' +
    "BouncedEmailAddressException: Email address is on account's Bounce list.\n",
  recipients: [
    {
      recipient: 'ann@example.org',
      status: '5.7.1',
      diagnosticCode: {
        type: 'X-Relay',
        text: "BouncedEmailAddressException: Email address is on account's Bounce list.",
      },
    },
  ],
  originalHeaders:
    'Received: from client (client [192.0.2.7])\r\n\tby relay.example.net with ESMTPA id x;\r\n\tSun, 29 Nov 2026 01:40:29 +0000\r\n' +
    'From: Shop <sender@shop.example>\r\nTo: ann@example.org\r\nSubject: Your order\r\n\r\nHello Ann,\r\nthe body.\r\n',
  boundary: 'b1',
};

describe('buildDeliveryStatusReport', () => {
  it('is a multipart/report of delivery-status with the three parts in order', () => {
    const { raw } = buildDeliveryStatusReport(base);
    const { headers, parts } = split(raw);
    expect(header(headers, 'Content-Type')).toBe(
      'multipart/report; report-type=delivery-status; boundary="b1"',
    );
    expect(header(headers, 'MIME-Version')).toBe('1.0');
    expect(parts.map((p) => header(p.headers, 'Content-Type'))).toEqual([
      'text/plain; charset=us-ascii',
      'message/delivery-status',
      'text/rfc822-headers',
    ]);
  });

  it('comes from the MAILER-DAEMON as an automatic reply, with a Message-ID and a Date', () => {
    const { headers } = split(buildDeliveryStatusReport(base).raw);
    expect(header(headers, 'From')).toBe('Mail Delivery System <MAILER-DAEMON@relay.example.net>');
    expect(header(headers, 'To')).toBe('<sender@shop.example>');
    expect(header(headers, 'Auto-Submitted')).toBe('auto-replied');
    expect(header(headers, 'Message-ID')).toBe('<mk3x9p2a0f1e2d3c4b5a69788@relay.example.net>');
    expect(header(headers, 'Date')).toBe('Sun, 29 Nov 2026 01:40:31 +0000');
    expect(header(headers, 'Subject')).toBe('Undelivered Mail: recipient is on the Bounce list');
  });

  it('keeps the human-readable sentence whole, on a line of its own', () => {
    const { parts } = split(buildDeliveryStatusReport(base).raw);
    expect(parts[0]?.body.split('\r\n')).toContain(
      "BouncedEmailAddressException: Email address is on account's Bounce list.",
    );
    expect(header(parts[0]?.headers ?? '', 'Content-Transfer-Encoding')).toBe('7bit');
  });

  it('writes the per-message and per-recipient fields of RFC 3464', () => {
    const { parts } = split(buildDeliveryStatusReport(base).raw);
    const [perMessage, perRecipient] = (parts[1]?.body ?? '').split('\r\n\r\n');
    expect(perMessage).toBe(
      'Reporting-MTA: dns; relay.example.net\r\nArrival-Date: Sun, 29 Nov 2026 01:40:29 +0000',
    );
    expect(perRecipient).toBe(
      'Final-Recipient: rfc822; ann@example.org\r\nAction: failed\r\nStatus: 5.7.1\r\n' +
        "Diagnostic-Code: X-Relay; BouncedEmailAddressException: Email address is on\r\n account's Bounce list.\r\n",
    );
  });

  it("reads back with the relay's own DSN parser", () => {
    const dsn = parseDeliveryStatusNotification(
      buildDeliveryStatusReport({
        ...base,
        recipients: [
          {
            recipient: 'bob@example.org',
            status: '5.1.1',
            remoteMta: 'mx.example.org',
            diagnosticCode: { type: 'smtp', text: '550 5.1.1 <bob@example.org>: Recipient address rejected' },
          },
          { recipient: 'eve@example.org', status: '5.2.2' },
        ],
      }).raw,
    );
    expect(dsn).toEqual({
      reportingMta: 'relay.example.net',
      recipients: [
        {
          finalRecipient: 'bob@example.org',
          action: 'failed',
          status: '5.1.1',
          remoteMta: 'mx.example.org',
          diagnosticType: 'smtp',
          diagnosticCode: '550 5.1.1 <bob@example.org>: Recipient address rejected',
        },
        { finalRecipient: 'eve@example.org', action: 'failed', status: '5.2.2' },
      ],
    });
  });

  it('carries the original headers and never the body', () => {
    const { parts } = split(buildDeliveryStatusReport(base).raw);
    const attached = parts[2]?.body ?? '';
    expect(attached).toContain('Subject: Your order\r\n');
    expect(attached).toContain('\tby relay.example.net with ESMTPA id x;\r\n');
    expect(attached).not.toContain('Hello Ann');
    expect(header(parts[2]?.headers ?? '', 'Content-Description')).toBe('Undelivered Message Headers');
  });

  it('says where rebuilt headers come from', () => {
    const { parts } = split(
      buildDeliveryStatusReport({
        ...base,
        originalHeaders: 'From: <x@y.example>\r\n',
        originalHeadersDescription: 'Undelivered Message Headers (rebuilt: the message was not kept)',
      }).raw,
    );
    expect(header(parts[2]?.headers ?? '', 'Content-Description')).toBe(
      'Undelivered Message Headers (rebuilt: the message was not kept)',
    );
    expect(parts[2]?.body).toBe('From: <x@y.example>\r\n');
  });

  it('cannot be made to start a header by a value from a client or a remote server', () => {
    const { raw } = buildDeliveryStatusReport({
      ...base,
      subject: 'Hi\r\nBcc: victim@example.org',
      recipients: [
        {
          recipient: 'ann@example.org',
          status: '5.0.0',
          diagnosticCode: { type: 'smtp', text: '550 no\r\nX: y' },
        },
      ],
    });
    const text = raw.toString('utf8');
    expect(text).not.toMatch(/^Bcc:/m);
    expect(text).not.toMatch(/^X: y/m);
  });

  it('marks UTF-8 text and headers 8-bit, with the RFC 6533 types where they apply', () => {
    const built = buildDeliveryStatusReport({
      ...base,
      subject: 'Zustellung fehlgeschlagen: Größe',
      text: 'Betreff: Grüße\n',
      recipients: [{ recipient: 'jürgen@bücher.example', status: '5.7.1' }],
      originalHeaders: 'Subject: Grüße\r\n',
    });
    const { headers, parts } = split(built.raw);
    expect(built.eightBit).toBe(true);
    expect(header(headers, 'Subject')).toContain('=?UTF-8?Q?');
    expect(libmime.decodeWords(header(headers, 'Subject') ?? '')).toBe('Zustellung fehlgeschlagen: Größe');
    expect(header(parts[0]?.headers ?? '', 'Content-Type')).toBe('text/plain; charset=utf-8');
    expect(header(parts[1]?.headers ?? '', 'Content-Type')).toBe('message/global-delivery-status');
    expect(parts[1]?.body).toContain('Final-Recipient: utf-8; jürgen@bücher.example');
    expect(header(parts[2]?.headers ?? '', 'Content-Type')).toBe('message/global-headers');
  });

  it('needs SMTPUTF8 only for a UTF-8 address to send to', () => {
    expect(buildDeliveryStatusReport(base).smtpUtf8).toBe(false);
    expect(buildDeliveryStatusReport({ ...base, to: 'jürgen@example.org' }).smtpUtf8).toBe(true);
  });

  it('omits Arrival-Date when unknown and keeps lines within 998 octets', () => {
    const { raw } = buildDeliveryStatusReport({
      ...base,
      arrivalDate: undefined,
      recipients: [
        {
          recipient: 'ann@example.org',
          status: '5.0.0',
          diagnosticCode: { type: 'smtp', text: 'x '.repeat(800) },
        },
      ],
    });
    expect(raw.toString()).not.toContain('Arrival-Date');
    expect(
      Math.max(
        ...raw
          .toString()
          .split('\r\n')
          .map((l) => l.length),
      ),
    ).toBeLessThanOrEqual(998);
    expect(raw.toString()).not.toMatch(/[^\r]\n/);
  });
});
