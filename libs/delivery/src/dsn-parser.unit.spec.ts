import { describe, expect, it } from 'vitest';
import { failedRecipients, parseDeliveryStatusNotification } from './dsn-parser.js';

const RETURN_PATH = 'bounces+9f3c2a7b1d4e5f60-1a2b3c4d@bounce.relay.test';
const crlf = (text: string): string => text.replace(/\r?\n/g, '\r\n');

/** The headers of the message the relay sent, as a report returns them. */
const ORIGINAL_HEADERS = `Return-Path: <${RETURN_PATH}>
From: Shop <orders@shop.example>
To: nobody@example.org
Subject: Your order
Message-ID: <9f3c2a7b1d4e5f60@relay.test>
Date: Tue, 11 Mar 2025 09:59:57 +0000
`;

/** Postfix 3.x, a rejected RCPT (CRLF line ends, as it arrives over SMTP). */
const POSTFIX = crlf(`Return-Path: <>
Received: by mail.example.org (Postfix)
	id 4Z9k1Q2w3Ez; Tue, 11 Mar 2025 10:00:00 +0000 (UTC)
Date: Tue, 11 Mar 2025 10:00:00 +0000 (UTC)
From: MAILER-DAEMON@mail.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: ${RETURN_PATH}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="4Z9k1Q2w3Ez.1741687200/mail.example.org"
Content-Transfer-Encoding: 8bit
Message-Id: <20250311100000.4Z9k1Q2w3Ez@mail.example.org>

This is a MIME-encapsulated message.

--4Z9k1Q2w3Ez.1741687200/mail.example.org
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mail.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<nobody@example.org>: host mx.example.org[192.0.2.10] said: 550 5.1.1
    <nobody@example.org>: Recipient address rejected: User unknown in local
    recipient table (in reply to RCPT TO command)

--4Z9k1Q2w3Ez.1741687200/mail.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.org
X-Postfix-Queue-ID: 4Z9k1Q2w3Ez
X-Postfix-Sender: rfc822; ${RETURN_PATH}
Arrival-Date: Tue, 11 Mar 2025 09:59:58 +0000 (UTC)
Original-Envelope-Id: 9f3c2a7b1d4e5f60+2Bx

Final-Recipient: rfc822; nobody@example.org
Original-Recipient: rfc822;nobody@example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.org>: Recipient address
    rejected: User unknown in local recipient table

--4Z9k1Q2w3Ez.1741687200/mail.example.org
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers
Content-Transfer-Encoding: 8bit

${ORIGINAL_HEADERS}
--4Z9k1Q2w3Ez.1741687200/mail.example.org--
`);

/** Exim 4: lower-case `Content-type`, `rfc822;addr` without a space, LF line ends, two recipients. */
const EXIM = `Return-path: <>
From: Mail Delivery System <Mailer-Daemon@mx.exim.example>
To: ${RETURN_PATH}
Subject: Mail delivery failed: returning message to sender
Content-type: multipart/report; report-type=delivery-status; boundary=1741687200-eximdsn-1804289383
MIME-Version: 1.0
Auto-Submitted: auto-replied

--1741687200-eximdsn-1804289383
Content-type: text/plain; charset=us-ascii

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  full@exim.example
    host mail.exim.example [198.51.100.7]
    SMTP error from remote mail server after RCPT TO:<full@exim.example>:
    552 5.2.2 Mailbox quota exceeded

--1741687200-eximdsn-1804289383
Content-type: message/delivery-status

Reporting-MTA: dns; mx.exim.example

Action: failed
Final-Recipient: rfc822;full@exim.example
Status: 5.0.0
Remote-MTA: dns; mail.exim.example
Diagnostic-Code: smtp; 552 5.2.2 Mailbox quota exceeded

Action: delayed
Final-Recipient: rfc822;slow@exim.example
Status: 4.0.0
Remote-MTA: dns; slow.exim.example
Diagnostic-Code: smtp; 451 4.3.0 Temporary local problem
Will-Retry-Until: Thu, 13 Mar 2025 10:00:00 +0000

--1741687200-eximdsn-1804289383
Content-type: message/rfc822

${ORIGINAL_HEADERS}
Hello.

--1741687200-eximdsn-1804289383--
`;

/** Gmail: the human part is multipart/related inside the report; the reply is multi-line. */
const GMAIL = crlf(`Delivered-To: ${RETURN_PATH}
Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: ${RETURN_PATH}
Auto-Submitted: auto-replied
Subject: Delivery Status Notification (Failure)
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000a1b2c3d4e5f6a7b8"; report-type=delivery-status

--000000000000a1b2c3d4e5f6a7b8
Content-Type: multipart/related; boundary="000000000000b2c3d4e5f6a7b8c9"

--000000000000b2c3d4e5f6a7b8c9
Content-Type: multipart/alternative; boundary="000000000000c3d4e5f6a7b8c9d0"

--000000000000c3d4e5f6a7b8c9d0
Content-Type: text/plain; charset="UTF-8"

** Address not found **

Your message wasn't delivered to nosuchuser@gmail.com because the address couldn't be found, or is unable to receive mail.

--000000000000c3d4e5f6a7b8c9d0
Content-Type: text/html; charset="UTF-8"

<html><body><h1>Address not found</h1></body></html>

--000000000000c3d4e5f6a7b8c9d0--
--000000000000b2c3d4e5f6a7b8c9--
--000000000000a1b2c3d4e5f6a7b8
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; relay.test
Arrival-Date: Tue, 11 Mar 2025 02:59:58 -0700 (PDT)
X-Original-Message-ID: <9f3c2a7b1d4e5f60@relay.test>

Final-Recipient: rfc822; nosuchuser@gmail.com
Action: failed
Status: 5.1.1
Remote-MTA: dns; gmail-smtp-in.l.google.com. (2607:f8b0:4864:20::1b, the server for the domain gmail.com.)
Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does not exist. Please try
 550-5.1.1 double-checking the recipient's email address for typos or
 550-5.1.1 unnecessary spaces. For more information, go to
 550 5.1.1  https://support.google.com/mail/?p=NoSuchUser d9443c01a7336-2232d2b4f1asi1234567ad.321 - gsmtp
Last-Attempt-Date: Tue, 11 Mar 2025 03:00:00 -0700 (PDT)

--000000000000a1b2c3d4e5f6a7b8
Content-Type: message/rfc822

${ORIGINAL_HEADERS}
Hello.

--000000000000a1b2c3d4e5f6a7b8--
`);

/** The delivery-status block of an Exchange Online NDR. */
const MICROSOFT_STATUS = crlf(`Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com
Received-From-MTA: dns;relay.test
Arrival-Date: Tue, 11 Mar 2025 10:00:00 +0000

Original-Recipient: rfc822;ghost@contoso.com
Final-Recipient: rfc822;ghost@contoso.com
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient ghost@contoso.com not found by SMTP address lookup
X-Display-Name: ghost@contoso.com
`);

function microsoft(statusPart: { encoding?: string; body: string }): string {
  return crlf(`From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.onmicrosoft.com>
To: <${RETURN_PATH}>
Subject: Undeliverable: Your order
Content-Type: multipart/report; report-type=delivery-status;
	boundary="_000_AM0PR01MB1234ABCD_"
MIME-Version: 1.0

--_000_AM0PR01MB1234ABCD_
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: base64

WW91ciBtZXNzYWdlIHRvIGdob3N0QGNvbnRvc28uY29tIGNvdWxkbid0IGJlIGRlbGl2ZXJlZC4=

--_000_AM0PR01MB1234ABCD_
Content-Type: message/delivery-status
${statusPart.encoding ? `Content-Transfer-Encoding: ${statusPart.encoding}\n` : ''}
${statusPart.body}
--_000_AM0PR01MB1234ABCD_
Content-Type: message/rfc822

${ORIGINAL_HEADERS}
Hello.

--_000_AM0PR01MB1234ABCD_--
`);
}

const wrap76 = (text: string): string => text.replace(/(.{76})/g, '$1\n');

/** Quoted-printable as an encoder writes it: `=` escaped, long lines broken with soft breaks. */
function quotedPrintable(text: string): string {
  return text
    .replace(/=/g, '=3D')
    .split(/\r\n/)
    .map((line) => line.replace(/(.{70})(?=.)/g, '$1=\r\n'))
    .join('\r\n');
}

const MICROSOFT_RECIPIENT = {
  finalRecipient: 'ghost@contoso.com',
  originalRecipient: 'ghost@contoso.com',
  action: 'failed',
  status: '5.1.10',
  diagnosticType: 'smtp',
  diagnosticCode:
    '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient ghost@contoso.com not found by SMTP address lookup',
};

describe('parseDeliveryStatusNotification', () => {
  it('reads a Postfix report (CRLF, folded diagnostic, ENVID in xtext)', () => {
    expect(parseDeliveryStatusNotification(Buffer.from(POSTFIX))).toEqual({
      originalEnvelopeId: '9f3c2a7b1d4e5f60+x',
      reportingMta: 'mail.example.org',
      recipients: [
        {
          finalRecipient: 'nobody@example.org',
          originalRecipient: 'nobody@example.org',
          action: 'failed',
          status: '5.1.1',
          remoteMta: 'mx.example.org',
          diagnosticType: 'smtp',
          diagnosticCode:
            '550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in local recipient table',
        },
      ],
    });
  });

  it('reads the same report with LF line ends', () => {
    expect(parseDeliveryStatusNotification(POSTFIX.replace(/\r\n/g, '\n'))).toEqual(
      parseDeliveryStatusNotification(POSTFIX),
    );
  });

  it('reads an Exim report and keeps only the failed recipient as failed', () => {
    const dsn = parseDeliveryStatusNotification(EXIM);
    expect(dsn?.reportingMta).toBe('mx.exim.example');
    expect(dsn?.recipients.map((r) => [r.finalRecipient, r.action])).toEqual([
      ['full@exim.example', 'failed'],
      ['slow@exim.example', 'delayed'],
    ]);
    expect(dsn && failedRecipients(dsn)).toEqual([
      {
        finalRecipient: 'full@exim.example',
        action: 'failed',
        status: '5.0.0',
        remoteMta: 'mail.exim.example',
        diagnosticType: 'smtp',
        diagnosticCode: '552 5.2.2 Mailbox quota exceeded',
      },
    ]);
  });

  it('reads a Gmail report: nested human part, multi-line reply on one line, comment after the Remote-MTA', () => {
    expect(parseDeliveryStatusNotification(GMAIL)).toEqual({
      reportingMta: 'googlemail.com',
      recipients: [
        {
          finalRecipient: 'nosuchuser@gmail.com',
          action: 'failed',
          status: '5.1.1',
          remoteMta: 'gmail-smtp-in.l.google.com.',
          diagnosticType: 'smtp',
          diagnosticCode:
            "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.com/mail/?p=NoSuchUser d9443c01a7336-2232d2b4f1asi1234567ad.321 - gsmtp",
        },
      ],
    });
  });

  it.each([
    ['as it is', microsoft({ body: MICROSOFT_STATUS })],
    [
      'base64',
      microsoft({ encoding: 'base64', body: wrap76(Buffer.from(MICROSOFT_STATUS).toString('base64')) }),
    ],
    [
      'quoted-printable',
      microsoft({ encoding: 'quoted-printable', body: quotedPrintable(MICROSOFT_STATUS) }),
    ],
  ])('reads a Microsoft report with the status part %s', (_name, raw) => {
    expect(parseDeliveryStatusNotification(raw)).toEqual({
      reportingMta: 'AM0PR01MB1234.eurprd01.prod.exchangelabs.com',
      recipients: [MICROSOFT_RECIPIENT],
    });
  });

  it('tolerates odd case, comments, angle brackets, a missing per-message group and a missing closing boundary', () => {
    const raw = crlf(`content-type: MULTIPART/REPORT; Report-Type=Delivery-Status; Boundary="b1"

--b1
CONTENT-TYPE: Message/Delivery-Status


final-recipient: RFC822; <Mixed.Case@Example.org>
ACTION: Failed (permanent)
status: 5.1.1 (bad destination mailbox address)
`);
    expect(parseDeliveryStatusNotification(raw)).toEqual({
      recipients: [{ finalRecipient: 'Mixed.Case@Example.org', action: 'failed', status: '5.1.1' }],
    });
  });

  it('decodes a utf-8 address type (RFC 6533) and reads message/global-delivery-status', () => {
    const raw = crlf(`Content-Type: multipart/report; report-type=global-delivery-status; boundary=g

--g
Content-Type: message/global-delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: utf-8; j\\x{00F6}rg@example.org
Action: failed
Status: 5.1.1
--g--
`);
    expect(parseDeliveryStatusNotification(raw)?.recipients[0]?.finalRecipient).toBe('jörg@example.org');
  });

  it('is null for mail that is no report: an auto-reply', () => {
    const raw = crlf(`From: someone@example.org
To: ${RETURN_PATH}
Subject: Out of office
Auto-Submitted: auto-replied
Content-Type: text/plain

I am away until Monday.
`);
    expect(parseDeliveryStatusNotification(raw)).toBeNull();
  });

  it('never takes a report out of an attached message', () => {
    const raw = crlf(`From: someone@example.org
To: ${RETURN_PATH}
Subject: Fwd: Undelivered Mail Returned to Sender
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain

See the attached bounce.

--outer
Content-Type: message/rfc822

${POSTFIX}
--outer--
`);
    expect(parseDeliveryStatusNotification(raw)).toBeNull();
  });

  it('reads past a part without headers', () => {
    const raw = crlf(`Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b

Your message could not be delivered.
Action: failed

--b
Content-Type: message/delivery-status

Final-Recipient: rfc822; x@example.org
Action: failed
Status: 5.1.1
--b--
`);
    expect(parseDeliveryStatusNotification(raw)?.recipients).toEqual([
      { finalRecipient: 'x@example.org', action: 'failed', status: '5.1.1' },
    ]);
  });

  it('does not treat text that only looks like a boundary as one', () => {
    const raw = crlf(`Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

The line below starts with the boundary but is longer:
--bogus
--b
Content-Type: message/delivery-status

Final-Recipient: rfc822; x@example.org
Action: failed
Status: 5.2.2
--b--
`);
    expect(parseDeliveryStatusNotification(raw)?.recipients).toEqual([
      { finalRecipient: 'x@example.org', action: 'failed', status: '5.2.2' },
    ]);
  });
});
