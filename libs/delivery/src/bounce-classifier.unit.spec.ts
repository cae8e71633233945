import { describe, expect, it } from 'vitest';
import {
  classifyConnectionError,
  classifyDeliveryStatus,
  classifySmtpReply,
  type ReplyClassification,
} from './bounce-classifier.js';

type Expected = Omit<ReplyClassification, 'diagnostic'>;

/** Replies as real servers send them (nodemailer's `response`: the whole reply, lines joined by \n). */
const REPLIES: readonly { name: string; code: number; text: string; expected: Expected }[] = [
  {
    name: 'Gmail unknown user, multi-line',
    code: 550,
    text: [
      '550-5.1.1 The email account that you tried to reach does not exist. Please try',
      "550-5.1.1 double-checking the recipient's email address for typos or",
      '550-5.1.1 unnecessary spaces. For more information, go to',
      '550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a640c23a62f3a-a9a0f2c1e1fsi123456466b.412 - gsmtp',
    ].join('\n'),
    expected: {
      outcome: 'bounced',
      bounceClass: 'hard',
      category: 'invalid-recipient',
      enhancedCode: '5.1.1',
    },
  },
  {
    name: 'Gmail disabled account',
    code: 550,
    text: '550-5.2.1 The email account that you tried to reach is disabled. Learn more at\n550 5.2.1  https://support.google.com/mail/?p=DisabledUser - gsmtp',
    expected: {
      outcome: 'bounced',
      bounceClass: 'hard',
      category: 'inactive-mailbox',
      enhancedCode: '5.2.1',
    },
  },
  {
    name: 'Gmail mailbox over quota',
    code: 552,
    text: "552-5.2.2 The recipient's inbox is out of storage space. Please direct the\n552 5.2.2 recipient to https://support.google.com/mail/?p=OverQuotaPerm - gsmtp",
    expected: { outcome: 'bounced', bounceClass: 'soft', category: 'mailbox-full', enhancedCode: '5.2.2' },
  },
  {
    name: 'Gmail unsolicited mail',
    code: 550,
    text: '550-5.7.1 [203.0.113.9] Our system has detected that this message is likely\n550-5.7.1 unsolicited mail. To reduce the amount of spam sent to Gmail, this message\n550 5.7.1 has been blocked. - gsmtp',
    expected: { outcome: 'bounced', bounceClass: 'soft', category: 'spam-content', enhancedCode: '5.7.1' },
  },
  {
    name: 'Gmail DMARC',
    code: 550,
    text: '550-5.7.26 Unauthenticated email from example.com is not accepted due to domain\n550 5.7.26 DMARC policy. - gsmtp',
    expected: { outcome: 'bounced', bounceClass: 'soft', category: 'sender-auth', enhancedCode: '5.7.26' },
  },
  {
    name: 'Gmail rate limit (421, deferred)',
    code: 421,
    text: '421-4.7.28 [203.0.113.9] Our system has detected an unusual rate of\n421 4.7.28 unsolicited mail originating from your IP address. - gsmtp',
    expected: { outcome: 'deferred', category: 'spam-block', enhancedCode: '4.7.28' },
  },
  {
    name: 'Outlook mailbox unavailable',
    code: 550,
    text: '550 5.5.0 Requested action not taken: mailbox unavailable',
    expected: {
      outcome: 'bounced',
      bounceClass: 'hard',
      category: 'invalid-recipient',
      enhancedCode: '5.5.0',
    },
  },
  {
    name: 'Microsoft 365 recipient not found',
    code: 550,
    text: '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient nobody@contoso.com not found by SMTP address lookup',
    expected: {
      outcome: 'bounced',
      bounceClass: 'hard',
      category: 'invalid-recipient',
      enhancedCode: '5.1.10',
    },
  },
  {
    name: 'Microsoft block list',
    code: 550,
    text: "550 5.7.1 Unfortunately, messages from [203.0.113.9] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).",
    expected: { outcome: 'bounced', bounceClass: 'soft', category: 'spam-block', enhancedCode: '5.7.1' },
  },
  {
    name: 'Microsoft relay to a non-accepted domain',
    code: 550,
    text: '550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain',
    expected: { outcome: 'bounced', bounceClass: 'hard', category: 'relay-denied', enhancedCode: '5.7.54' },
  },
  {
    name: 'Yahoo unknown user without an enhanced code',
    code: 554,
    text: "554 delivery error: dd This user doesn't have a yahoo.com account (nobody@yahoo.com) [0] - mta4321.mail.bf1.yahoo.com",
    expected: {
      outcome: 'bounced',
      bounceClass: 'hard',
      category: 'invalid-recipient',
      enhancedCode: '5.1.1',
    },
  },
  {
    name: 'Yahoo disabled mailbox',
    code: 554,
    text: '554 delivery error: dd Sorry your message to someone@yahoo.com cannot be delivered. This mailbox is disabled (554.30). - mta1234.mail.ne1.yahoo.com',
    expected: {
      outcome: 'bounced',
      bounceClass: 'hard',
      category: 'inactive-mailbox',
      enhancedCode: '5.2.1',
    },
  },
  {
    name: 'Yahoo policy',
    code: 554,
    text: '554 5.7.9 Message not accepted for policy reasons.  See https://postmaster.yahooinc.com/error-codes',
    expected: { outcome: 'bounced', bounceClass: 'soft', category: 'policy', enhancedCode: '5.7.9' },
  },
  {
    name: 'mailbox full, temporary',
    code: 452,
    text: '452 4.2.2 mailbox full',
    expected: { outcome: 'deferred', category: 'mailbox-full', enhancedCode: '4.2.2' },
  },
  {
    name: 'mailbox full without an enhanced code: the detail comes from the text',
    code: 452,
    text: '452 Mailbox full',
    expected: { outcome: 'deferred', category: 'mailbox-full', enhancedCode: '4.2.2' },
  },
  {
    name: 'syntax error without an enhanced code: the detail comes from the basic code',
    code: 500,
    text: '500 Syntax error, command unrecognized',
    expected: { outcome: 'bounced', bounceClass: 'soft', category: 'protocol', enhancedCode: '5.5.2' },
  },
  {
    name: 'try again later',
    code: 421,
    text: '421 4.7.0 Try again later, closing connection. (EHLO) - gsmtp',
    expected: { outcome: 'deferred', category: 'transient', enhancedCode: '4.7.0' },
  },
  {
    name: 'greylisting',
    code: 450,
    text: '450 4.2.0 <a@example.org>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.org.html',
    expected: { outcome: 'deferred', category: 'greylisted', enhancedCode: '4.2.0' },
  },
  {
    name: 'Spamhaus listing (Postfix)',
    code: 550,
    text: '550 5.7.1 Service unavailable; client host [203.0.113.9] blocked using Spamhaus; https://www.spamhaus.org/query/ip/203.0.113.9',
    expected: { outcome: 'bounced', bounceClass: 'soft', category: 'spam-block', enhancedCode: '5.7.1' },
  },
  {
    name: 'generic RBL',
    code: 554,
    text: '554 5.7.1 Rejected: 203.0.113.9 listed at bl.example-rbl.org',
    expected: { outcome: 'bounced', bounceClass: 'soft', category: 'spam-block', enhancedCode: '5.7.1' },
  },
  {
    name: 'Postfix relay access denied',
    code: 554,
    text: '554 5.7.1 <someone@elsewhere.example>: Relay access denied',
    expected: { outcome: 'bounced', bounceClass: 'hard', category: 'relay-denied', enhancedCode: '5.7.1' },
  },
  {
    name: 'Postfix unknown local user',
    code: 550,
    text: '550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in local recipient table',
    expected: {
      outcome: 'bounced',
      bounceClass: 'hard',
      category: 'invalid-recipient',
      enhancedCode: '5.1.1',
    },
  },
  {
    name: 'Postfix message size',
    code: 552,
    text: '552 5.3.4 Message size exceeds fixed limit',
    expected: {
      outcome: 'bounced',
      bounceClass: 'soft',
      category: 'message-too-large',
      enhancedCode: '5.3.4',
    },
  },
  {
    name: 'message too large for the recipient (5.2.3)',
    code: 552,
    text: '552 5.2.3 Your message exceeded our size limit for this recipient',
    expected: {
      outcome: 'bounced',
      bounceClass: 'soft',
      category: 'message-too-large',
      enhancedCode: '5.2.3',
    },
  },
  {
    name: 'bad domain',
    code: 550,
    text: '550 5.1.2 Bad destination system address',
    expected: { outcome: 'bounced', bounceClass: 'hard', category: 'bad-domain', enhancedCode: '5.1.2' },
  },
  {
    name: 'host not found',
    code: 554,
    text: '554 5.4.4 SMTPSEND.DNS.NonExistentDomain; nonexistent domain',
    expected: { outcome: 'bounced', bounceClass: 'hard', category: 'bad-domain', enhancedCode: '5.4.4' },
  },
  {
    name: 'user unknown with 5.1.0',
    code: 550,
    text: '550 5.1.0 <x@example.net> user unknown',
    expected: {
      outcome: 'bounced',
      bounceClass: 'hard',
      category: 'invalid-recipient',
      enhancedCode: '5.1.0',
    },
  },
  {
    name: 'null MX (RFC 7505)',
    code: 556,
    text: '556 5.1.10 Recipient address has null MX',
    expected: { outcome: 'bounced', bounceClass: 'hard', category: 'routing', enhancedCode: '5.1.10' },
  },
  {
    name: 'authentication required',
    code: 530,
    text: '530 5.7.0 Authentication required',
    expected: { outcome: 'bounced', bounceClass: 'soft', category: 'auth-required', enhancedCode: '5.7.0' },
  },
  {
    name: 'virus',
    code: 554,
    text: '554 5.7.1 Message rejected: virus found (Eicar-Test-Signature)',
    expected: {
      outcome: 'bounced',
      bounceClass: 'soft',
      category: 'content-rejected',
      enhancedCode: '5.7.1',
    },
  },
  {
    name: 'bare 550 without an enhanced code or a telling text',
    code: 550,
    text: '550 Administrative prohibition',
    expected: { outcome: 'bounced', bounceClass: 'soft', category: 'uncategorized', enhancedCode: '5.0.0' },
  },
  {
    name: 'bare 451',
    code: 451,
    text: '451 Requested action aborted: local error in processing',
    expected: { outcome: 'deferred', category: 'transient', enhancedCode: '4.3.0' },
  },
  {
    name: 'enhanced code in brackets at the end, not an IP address',
    code: 550,
    text: '550 Mailbox does not exist [203.0.113.9] (5.1.1)',
    expected: {
      outcome: 'bounced',
      bounceClass: 'hard',
      category: 'invalid-recipient',
      enhancedCode: '5.1.1',
    },
  },
  {
    name: 'delivered',
    code: 250,
    text: '250 2.0.0 OK  1712345678 a640c23a62f3a-a9a0f2c1e1fsi123456466b.412 - gsmtp',
    expected: { outcome: 'delivered', category: 'delivered', enhancedCode: '2.0.0' },
  },
  {
    name: 'delivered without an enhanced code',
    code: 250,
    text: 'Ok: queued as 4Xyz',
    expected: { outcome: 'delivered', category: 'delivered', enhancedCode: '2.0.0' },
  },
];

describe('classifySmtpReply', () => {
  it.each(REPLIES)('$name', ({ code, text, expected }) => {
    const { diagnostic: _diagnostic, ...result } = classifySmtpReply({ code, text });
    expect(result).toEqual(expected);
  });

  it('prefers an enhanced code given apart to one in the text', () => {
    const result = classifySmtpReply({ code: 550, enhancedCode: '5.1.1', text: 'No such user here' });
    expect(result).toMatchObject({
      category: 'invalid-recipient',
      enhancedCode: '5.1.1',
      bounceClass: 'hard',
    });
  });

  it('gives the diagnostic on one line as the server said it, without an invented enhanced code', () => {
    expect(classifySmtpReply({ code: 550, text: REPLIES[0]?.text ?? '' }).diagnostic).toBe(
      "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.com/mail/?p=NoSuchUser a640c23a62f3a-a9a0f2c1e1fsi123456466b.412 - gsmtp",
    );
    expect(classifySmtpReply({ code: 554, text: '554 delivery error: dd gone' }).diagnostic).toBe(
      '554 delivery error: dd gone',
    );
  });

  it('takes an unexpected reply class as a permanent failure', () => {
    expect(classifySmtpReply({ code: 354, text: 'go ahead' })).toMatchObject({ outcome: 'bounced' });
  });
});

describe('classifyConnectionError', () => {
  const errno = (code: string, message: string): Error => Object.assign(new Error(message), { code });

  it.each([
    ['refused', errno('ECONNREFUSED', 'connect ECONNREFUSED 192.0.2.1:25'), '4.4.1'],
    ['connect timeout', errno('ETIMEDOUT', 'connect ETIMEDOUT 192.0.2.1:25'), '4.4.1'],
    ['nodemailer ETIMEDOUT mid-session', errno('ETIMEDOUT', 'Timeout'), '4.4.2'],
    ['reset', errno('ECONNRESET', 'read ECONNRESET'), '4.4.2'],
    ['TLS', errno('ETLS', 'unable to verify the first certificate'), '4.4.2'],
    ['MX host does not resolve', errno('ENOTFOUND', 'getaddrinfo ENOTFOUND mx.example.test'), '4.4.3'],
  ])('%s -> deferred, connection', (_name, error, enhancedCode) => {
    expect(classifyConnectionError(error)).toMatchObject({
      outcome: 'deferred',
      category: 'connection',
      enhancedCode,
    });
  });

  it('keeps the errno in the diagnostic', () => {
    expect(classifyConnectionError(errno('ETLS', 'handshake failed')).diagnostic).toBe(
      'ETLS: handshake failed',
    );
  });

  it('classifies an error that carries an SMTP reply as that reply', () => {
    const error = Object.assign(new Error("Can't send mail - all recipients were rejected"), {
      code: 'EENVELOPE',
      responseCode: 550,
      response: '550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown',
    });
    expect(classifyConnectionError(error)).toMatchObject({
      outcome: 'bounced',
      bounceClass: 'hard',
      category: 'invalid-recipient',
      enhancedCode: '5.1.1',
    });
  });

  it('copes with something that is not an Error', () => {
    expect(classifyConnectionError('socket hang up')).toMatchObject({
      outcome: 'deferred',
      category: 'connection',
      diagnostic: 'socket hang up',
    });
  });
});

describe('classifyDeliveryStatus (Action: failed)', () => {
  it('uses the Status and the diagnostic', () => {
    expect(
      classifyDeliveryStatus({
        status: '5.1.1',
        diagnosticType: 'smtp',
        diagnosticCode: '550-5.1.1 The email account that you tried to reach does not exist. - gsmtp',
      }),
    ).toEqual({ bounceClass: 'hard', category: 'invalid-recipient', enhancedCode: '5.1.1' });
  });

  it('prefers the diagnostic code when the Status is only X.0.0', () => {
    expect(
      classifyDeliveryStatus({
        status: '5.0.0',
        diagnosticType: 'smtp',
        diagnosticCode: '552 5.2.2 Mailbox full',
      }),
    ).toEqual({ bounceClass: 'soft', category: 'mailbox-full', enhancedCode: '5.2.2' });
  });

  it('reads an MTA-specific diagnostic as text', () => {
    expect(
      classifyDeliveryStatus({
        status: '5.4.4',
        diagnosticType: 'X-Postfix',
        diagnosticCode:
          'Host or domain name not found. Name service error for name=nowhere.example type=AAAA: Host not found',
      }),
    ).toEqual({ bounceClass: 'hard', category: 'bad-domain', enhancedCode: '5.4.4' });
  });

  it('is a soft expired bounce when the remote gave up on a temporary failure', () => {
    expect(
      classifyDeliveryStatus({
        status: '4.4.1',
        diagnosticType: 'X-Postfix',
        diagnosticCode:
          'delivery temporarily suspended: connect to mx.example.org[192.0.2.1]:25: Connection refused',
      }),
    ).toEqual({ bounceClass: 'soft', category: 'expired', enhancedCode: '4.4.1' });
    expect(classifyDeliveryStatus({ status: '4.2.2', diagnosticCode: '452 4.2.2 Mailbox full' })).toEqual({
      bounceClass: 'soft',
      category: 'mailbox-full',
      enhancedCode: '4.2.2',
    });
  });

  it('copes with neither Status nor diagnostic', () => {
    expect(classifyDeliveryStatus({})).toEqual({
      bounceClass: 'soft',
      category: 'uncategorized',
      enhancedCode: '5.0.0',
    });
  });
});
