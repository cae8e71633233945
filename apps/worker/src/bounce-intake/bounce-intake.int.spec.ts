import { Test, type TestingModule } from '@nestjs/testing';
import { Ajv2020 } from 'ajv/dist/2020.js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, loadConfig, LOGGER, RELAY_CONFIG, type RelayConfig } from '@relay/config';
import { verpReturnPath } from '@relay/delivery';
import { EVENT_SCHEMAS, type Bounced } from '@relay/domain';
import { EVENT_LOG, PostgresEventLog, type EventLog } from '@relay/event-log';
import { createTestDatabase, SmtpTestClient, type TestDatabase } from '@relay/testing';
import { BounceIntakeService } from './bounce-intake.service.js';
import { DELIVERY_LOOKUP, type DeliveredMessage, type DeliveryLookup } from './delivery-lookup.port.js';

const BOUNCE_DOMAIN = 'bounce.relay.test';
const ACCOUNT_ID = 'acct-bounce-intake';

/**
 * A DeliveryLookup over a table of its own (the delivery stage binds the port to its queue
 * table; this test needs only the port's contract, on a real Postgres).
 */
class TableDeliveryLookup implements DeliveryLookup {
  constructor(private readonly pool: pg.Pool) {}

  static async create(pool: pg.Pool): Promise<TableDeliveryLookup> {
    await pool.query(
      `CREATE TABLE bounce_test_messages (message_id text PRIMARY KEY, account_id text NOT NULL, recipients text[] NOT NULL)`,
    );
    return new TableDeliveryLookup(pool);
  }

  async add(messageId: string, message: DeliveredMessage): Promise<void> {
    await this.pool.query(`INSERT INTO bounce_test_messages VALUES ($1, $2, $3)`, [
      messageId,
      message.accountId,
      message.recipients,
    ]);
  }

  async findMessage(messageId: string): Promise<DeliveredMessage | null> {
    const { rows } = await this.pool.query<{ account_id: string; recipients: string[] }>(
      `SELECT account_id, recipients FROM bounce_test_messages WHERE message_id = $1`,
      [messageId],
    );
    const row = rows[0];
    return row ? { accountId: row.account_id, recipients: row.recipients } : null;
  }
}

const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
ajv.addFormat('date-time', { type: 'string', validate: (value: string) => !Number.isNaN(Date.parse(value)) });
const validBounced = ajv.compile(EVENT_SCHEMAS.Bounced);

const crlf = (text: string): string => text.replace(/\r?\n/g, '\r\n');

/** A Postfix report for `recipients`; each entry says its action, status and reply. */
function postfixReport(
  to: string,
  entries: readonly { recipient: string; action: string; status: string; reply: string }[],
): string {
  const groups = entries
    .map(
      (e) => `Final-Recipient: rfc822; ${e.recipient}
Original-Recipient: rfc822;${e.recipient}
Action: ${e.action}
Status: ${e.status}
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; ${e.reply}
`,
    )
    .join('\n');
  return crlf(`Return-Path: <>
Date: Tue, 11 Mar 2025 10:00:00 +0000 (UTC)
From: MAILER-DAEMON@mail.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: ${to}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="4Z9k1Q2w3Ez.1741687200/mail.example.org"

This is a MIME-encapsulated message.

--4Z9k1Q2w3Ez.1741687200/mail.example.org
Content-Description: Notification
Content-Type: text/plain; charset=utf-8

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--4Z9k1Q2w3Ez.1741687200/mail.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.org
Arrival-Date: Tue, 11 Mar 2025 09:59:58 +0000 (UTC)

${groups}
--4Z9k1Q2w3Ez.1741687200/mail.example.org
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Shop <orders@shop.example>
Subject: Your order

--4Z9k1Q2w3Ez.1741687200/mail.example.org--
`);
}

/** RFC 5321 4.5.2: a line starting with a dot gets another one. */
const dotStuff = (message: string): string => message.replace(/^\./gm, '..');

let nextMessage = 0;
/** A relay message id like the ingress makes: lower-case hex. */
const newMessageId = (): string => `5f2a9c01e4b7${(0xd000 + ++nextMessage).toString(16)}`;

describe('BounceIntakeService', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let eventLog: PostgresEventLog;
  let lookup: TableDeliveryLookup;
  let moduleRef: TestingModule;
  let port: number;
  const logLines: Record<string, unknown>[] = [];
  const startedAt = new Date(Date.now() - 1000);

  async function startIntake(log: EventLog): Promise<{ moduleRef: TestingModule; port: number }> {
    const config: RelayConfig = loadConfig({
      RELAY_HOSTNAME: 'relay.test',
      BOUNCE_DOMAIN,
      BOUNCE_SMTP_PORT: '0',
      LISTEN_HOST: '127.0.0.1',
    });
    const ref = await Test.createTestingModule({
      providers: [
        BounceIntakeService,
        { provide: RELAY_CONFIG, useValue: config },
        {
          provide: LOGGER,
          useValue: createLogger('debug', {}, (line) =>
            logLines.push(JSON.parse(line) as Record<string, unknown>),
          ),
        },
        { provide: EVENT_LOG, useValue: log },
        { provide: DELIVERY_LOOKUP, useValue: lookup },
      ],
    }).compile();
    await ref.init();
    const bound = ref.get(BounceIntakeService).port();
    if (bound === undefined) throw new Error('bounce intake is not listening');
    return { moduleRef: ref, port: bound };
  }

  beforeAll(async () => {
    db = await createTestDatabase('bounce_intake');
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
    lookup = await TableDeliveryLookup.create(pool);
    eventLog = await PostgresEventLog.connect({
      url: db.url,
      logger: createLogger('error', {}, () => undefined),
    });
    ({ moduleRef, port } = await startIntake(eventLog));
  });

  afterAll(async () => {
    await moduleRef?.close();
    await eventLog?.close();
    await pool?.end();
    await db?.drop();
  });

  async function bouncedEvents(messageId: string): Promise<Bounced[]> {
    const events: Bounced[] = [];
    for await (const { event } of eventLog.readRange({
      from: startedAt,
      to: new Date(Date.now() + 60_000),
      types: ['Bounced'],
    })) {
      if (event.type === 'Bounced' && event.messageId === messageId) events.push(event);
    }
    return events;
  }

  /** One SMTP transaction; returns the reply to the end of DATA. */
  async function send(to: readonly string[], message: string, at = port): Promise<string> {
    const { client } = await SmtpTestClient.connect(at);
    try {
      expect(await client.line('EHLO mail.example.org')).toMatch(/^250 /);
      expect(await client.line('MAIL FROM:<>')).toBe('250 2.1.0 Accepted');
      for (const rcpt of to) expect(await client.line(`RCPT TO:<${rcpt}>`)).toBe('250 2.1.5 Accepted');
      expect(await client.line('DATA')).toMatch(/^354 /);
      client.write(`${dotStuff(message)}\r\n.\r\n`);
      const reply = await client.reply();
      await client.line('QUIT');
      return reply[reply.length - 1] ?? '';
    } finally {
      client.close();
    }
  }

  describe('EHLO', () => {
    it('offers neither AUTH nor STARTTLS', async () => {
      const { client, greeting } = await SmtpTestClient.connect(port);
      try {
        expect(greeting).toEqual(['220 relay.test ESMTP bounce intake']);
        expect(await client.command('EHLO mail.example.org')).toEqual([
          '250-relay.test Nice to meet you, [127.0.0.1]',
          '250-PIPELINING',
          '250-8BITMIME',
          '250-SMTPUTF8',
          '250-ENHANCEDSTATUSCODES',
          '250 SIZE 10485760',
        ]);
        expect(await client.line('AUTH PLAIN AGFAYg==')).toBe('500 5.5.2 Error: command not recognized');
        expect(await client.line('STARTTLS')).toBe('500 5.5.2 Error: command not recognized');
      } finally {
        client.close();
      }
    });
  });

  describe('RCPT TO', () => {
    it.each([
      ['postmaster@bounce.relay.test', 'not a VERP address'],
      ['bounces+@bounce.relay.test', 'an empty token'],
      ['bounces+5f2a9c01e4b7d3a6-nothex00@bounce.relay.test', 'a malformed tag'],
      ['bounces+5f2a9c01e4b7d3a6@elsewhere.example', 'another domain'],
    ])('refuses %s (%s)', async (address) => {
      const { client } = await SmtpTestClient.connect(port);
      try {
        await client.command('EHLO mail.example.org');
        await client.command('MAIL FROM:<>');
        expect(await client.line(`RCPT TO:<${address}>`)).toBe('550 5.1.1 No such user here');
      } finally {
        client.close();
      }
    });

    it('accepts a return path the delivery stage makes, in any case', async () => {
      const { client } = await SmtpTestClient.connect(port);
      try {
        await client.command('EHLO mail.example.org');
        await client.command('MAIL FROM:<>');
        const returnPath = verpReturnPath('5f2a9c01e4b7d3a6', BOUNCE_DOMAIN, 'ada@example.org');
        expect(await client.line(`RCPT TO:<${returnPath.toUpperCase()}>`)).toBe('250 2.1.5 Accepted');
      } finally {
        client.close();
      }
    });
  });

  describe('DATA', () => {
    it('appends Bounced for the recipient of a single-recipient return path, before the 250', async () => {
      const messageId = newMessageId();
      await lookup.add(messageId, {
        accountId: ACCOUNT_ID,
        recipients: ['Nobody@example.org', 'ada@example.org'],
      });
      // The remote reports the address it forwarded to; the VERP tag still names our recipient.
      const returnPath = verpReturnPath(messageId, BOUNCE_DOMAIN, 'Nobody@example.org');
      const report = postfixReport(returnPath, [
        {
          recipient: 'nobody@forwarded.example',
          action: 'failed',
          status: '5.1.1',
          reply:
            '550 5.1.1 <nobody@forwarded.example>: Recipient address rejected: User unknown in local recipient table',
        },
      ]);

      expect(await send([returnPath], report)).toBe('250 2.6.0 Ok: 1 bounce(s) recorded');

      const events = await bouncedEvents(messageId);
      expect(events).toHaveLength(1);
      const [event] = events;
      expect(event).toMatchObject({
        type: 'Bounced',
        accountId: ACCOUNT_ID,
        messageId,
        data: {
          recipient: 'Nobody@example.org',
          bounceClass: 'hard',
          category: 'invalid-recipient',
          status: '5.1.1',
          diagnostic:
            '550 5.1.1 <nobody@forwarded.example>: Recipient address rejected: User unknown in local recipient table',
          source: 'dsn',
          attempt: 1,
          mx: 'mx.example.org',
        },
      });
      expect(validBounced(event), JSON.stringify(validBounced.errors)).toBe(true);
      expect(logLines).toContainEqual(
        expect.objectContaining({
          msg: 'bounced',
          component: 'bounce-intake',
          messageId,
          accountId: ACCOUNT_ID,
          recipient: 'Nobody@example.org',
          bounceClass: 'hard',
          category: 'invalid-recipient',
          status: '5.1.1',
          source: 'dsn',
        }),
      );
    });

    it('maps a multi-recipient return path by Final-Recipient, skipping delayed and unknown recipients', async () => {
      const messageId = newMessageId();
      await lookup.add(messageId, {
        accountId: ACCOUNT_ID,
        recipients: ['full@example.org', 'gone@example.org', 'slow@example.org'],
      });
      const returnPath = verpReturnPath(messageId, BOUNCE_DOMAIN);
      const report = postfixReport(returnPath, [
        { recipient: 'full@example.org', action: 'failed', status: '5.2.2', reply: '552 5.2.2 Mailbox full' },
        { recipient: 'GONE@example.org', action: 'failed', status: '5.0.0', reply: '550 5.1.1 User unknown' },
        { recipient: 'slow@example.org', action: 'delayed', status: '4.4.1', reply: '421 4.4.1 Try later' },
        {
          recipient: 'stranger@example.org',
          action: 'failed',
          status: '5.1.1',
          reply: '550 5.1.1 User unknown',
        },
      ]);

      expect(await send([returnPath], report)).toBe('250 2.6.0 Ok: 2 bounce(s) recorded');

      const events = await bouncedEvents(messageId);
      expect(
        events.map((e) => [e.data.recipient, e.data.bounceClass, e.data.category, e.data.status]),
      ).toEqual([
        ['full@example.org', 'soft', 'mailbox-full', '5.2.2'],
        ['gone@example.org', 'hard', 'invalid-recipient', '5.1.1'],
      ]);
      expect(logLines).toContainEqual(
        expect.objectContaining({ messageId, finalRecipient: 'stranger@example.org', level: 'warn' }),
      );
    });

    it('records a report sent twice once (the remote retries when it missed our 250)', async () => {
      const messageId = newMessageId();
      await lookup.add(messageId, { accountId: ACCOUNT_ID, recipients: ['twice@example.org'] });
      const returnPath = verpReturnPath(messageId, BOUNCE_DOMAIN, 'twice@example.org');
      const report = postfixReport(returnPath, [
        {
          recipient: 'twice@example.org',
          action: 'failed',
          status: '5.1.1',
          reply: '550 5.1.1 User unknown',
        },
      ]);

      expect(await send([returnPath], report)).toBe('250 2.6.0 Ok: 1 bounce(s) recorded');
      expect(await send([returnPath], report)).toBe('250 2.6.0 Ok: 1 bounce(s) recorded');

      expect(await bouncedEvents(messageId)).toHaveLength(1);
    });

    it('accepts and ignores mail that is no report, such as an auto-reply', async () => {
      const messageId = newMessageId();
      await lookup.add(messageId, { accountId: ACCOUNT_ID, recipients: ['away@example.org'] });
      const returnPath = verpReturnPath(messageId, BOUNCE_DOMAIN, 'away@example.org');
      const autoReply = crlf(`From: away@example.org
To: ${returnPath}
Subject: Out of office
Auto-Submitted: auto-replied
Content-Type: text/plain

I am away until Monday.
.A line that starts with a dot.
`);

      expect(await send([returnPath], autoReply)).toBe('250 2.6.0 Ok: not a delivery status report, ignored');

      expect(await bouncedEvents(messageId)).toEqual([]);
      expect(logLines).toContainEqual(
        expect.objectContaining({ msg: 'not a delivery status report; ignored', messageIds: [messageId] }),
      );
    });

    it('accepts and ignores a report for a message the relay does not know', async () => {
      const messageId = newMessageId();
      const returnPath = verpReturnPath(messageId, BOUNCE_DOMAIN, 'who@example.org');
      const report = postfixReport(returnPath, [
        { recipient: 'who@example.org', action: 'failed', status: '5.1.1', reply: '550 5.1.1 User unknown' },
      ]);

      expect(await send([returnPath], report)).toBe('250 2.6.0 Ok: nothing to record');

      expect(await bouncedEvents(messageId)).toEqual([]);
      expect(logLines).toContainEqual(
        expect.objectContaining({ msg: 'report for an unknown message; ignored', messageId }),
      );
    });

    it('answers 451 and records nothing when the event log cannot take the events', async () => {
      const messageId = newMessageId();
      await lookup.add(messageId, { accountId: ACCOUNT_ID, recipients: ['later@example.org'] });
      const closedLog = await PostgresEventLog.connect({
        url: db.url,
        logger: createLogger('error', {}, () => undefined),
      });
      await closedLog.close();
      const second = await startIntake(closedLog);
      try {
        const returnPath = verpReturnPath(messageId, BOUNCE_DOMAIN, 'later@example.org');
        const report = postfixReport(returnPath, [
          {
            recipient: 'later@example.org',
            action: 'failed',
            status: '5.1.1',
            reply: '550 5.1.1 User unknown',
          },
        ]);

        expect(await send([returnPath], report, second.port)).toBe(
          '451 4.3.0 Requested action aborted: local error in processing',
        );
      } finally {
        await second.moduleRef.close();
      }
      expect(await bouncedEvents(messageId)).toEqual([]);
    });
  });
});
