import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buffer } from 'node:stream/consumers';
import nodemailer from 'nodemailer';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventOfType, EventType } from '@relay/domain';
import type { EventLog } from '@relay/event-log';
import { countSpooledBodies, LocalDirectorySpool } from '@relay/spool';
import { authPlain, type SmtpTestClient } from '@relay/testing';
import {
  capabilities,
  createSenderAccount,
  QUEUED,
  SENDER,
  sessionsClosedAfterEach,
} from '../support/smtp-sessions.js';
import { openLogReader, startTestRelay, type TestRelay } from '../support/test-relay.js';

const MAX_SIZE = 20_000;
let t: TestRelay;
let log: EventLog;
const { password } = SENDER;

async function events<T extends EventType>(type: T): Promise<EventOfType<T>[]> {
  const out: EventOfType<T>[] = [];
  const range = { from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 60_000), types: [type] };
  for await (const { event } of log.readRange(range)) out.push(event as EventOfType<T>);
  return out;
}

async function spooledBodies(): Promise<number> {
  return countSpooledBodies(join(t.dataDir, 'spool'));
}

/** A plain-port session that is past STARTTLS, EHLO and AUTH as the test account. */
async function authenticatedSession(): Promise<SmtpTestClient> {
  const { client } = await connect(t.smtpPort);
  await client.command('EHLO client.test');
  await client.startTls();
  await client.command('EHLO client.test');
  expect(await client.line(`AUTH PLAIN ${authPlain('sender', password)}`)).toBe(
    '235 2.7.0 Authentication successful',
  );
  return client;
}

async function sendData(client: SmtpTestClient, body: string): Promise<string> {
  expect(await client.line('DATA')).toMatch(/^354 /);
  client.write(body);
  const reply = await client.reply();
  return reply[reply.length - 1] ?? '';
}

const { connect, closeAll } = sessionsClosedAfterEach();

const message = (from = 'Sender <news@example.com>', extra = ''): string =>
  `From: ${from}\r\nTo: rcpt@example.org\r\nSubject: hello\r\n${extra}\r\nHello there.\r\n.\r\n`;

beforeAll(async () => {
  t = await startTestRelay({ MAX_MESSAGE_SIZE: String(MAX_SIZE), SMTP_MAX_RECIPIENTS: '3' });
  log = await openLogReader(t.db);
  await createSenderAccount(t);
});

afterAll(async () => {
  await log?.close();
  await t?.stop();
});

describe('EHLO and TLS', () => {
  it('advertises the extensions on a plain port, AUTH only once encrypted', async () => {
    const { client, greeting } = await connect(t.smtpPort);
    expect(greeting[0]).toMatch(/^220 relay\.test ESMTP/);
    const ehlo = capabilities(await client.command('EHLO client.test'));
    expect(ehlo).toEqual(
      expect.arrayContaining([
        'PIPELINING',
        '8BITMIME',
        'SMTPUTF8',
        'ENHANCEDSTATUSCODES',
        'SIZE 20000',
        'STARTTLS',
      ]),
    );
    expect(ehlo.some((l) => l.startsWith('AUTH'))).toBe(false);
    expect(await client.line(`AUTH PLAIN ${authPlain('sender', password)}`)).toBe(
      '538 5.7.0 Error: Must issue a STARTTLS command first',
    );
    expect(await client.startTls()).toMatch(/^220 2\.0\.0 /);
    const secured = capabilities(await client.command('EHLO client.test'));
    expect(secured).toContain('AUTH PLAIN LOGIN');
    expect(secured).not.toContain('STARTTLS');
    client.close();
  });

  it('takes AUTH LOGIN on the implicit-TLS port', async () => {
    const { client, greeting } = await connect(t.smtpsPort, { tls: true });
    expect(greeting[0]).toMatch(/^220 /);
    expect(capabilities(await client.command('EHLO client.test'))).toContain('AUTH PLAIN LOGIN');
    expect(await client.line('AUTH LOGIN')).toBe('334 VXNlcm5hbWU6');
    expect(await client.line(Buffer.from('sender').toString('base64'))).toBe('334 UGFzc3dvcmQ6');
    expect(await client.line(Buffer.from(password).toString('base64'))).toBe(
      '235 2.7.0 Authentication successful',
    );
    client.close();
  });

  it('delivers through a real client (nodemailer) with STARTTLS and AUTH', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: t.smtpPort,
      secure: false,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
      auth: { user: 'sender', pass: password },
    });
    const info = await transport.sendMail({
      from: '"News" <news@example.com>',
      to: 'someone@example.org',
      subject: 'via nodemailer',
      text: 'hi',
    });
    expect(info.response).toMatch(QUEUED);
    transport.close();
  });
});

describe('who may relay', () => {
  it('refuses a client with neither AUTH nor an allow-listed IP at RCPT TO, and records RelayDenied', async () => {
    const { client } = await connect(t.smtpPort);
    await client.command('EHLO client.test');
    expect(await client.line('MAIL FROM:<someone@elsewhere.test>')).toBe('250 2.1.0 Accepted');
    expect(await client.line('RCPT TO:<victim@example.org>')).toBe(
      '550 5.7.1 Relaying denied for [127.0.0.1]',
    );
    expect(await client.line('RCPT TO:<victim2@example.org>')).toBe(
      '550 5.7.1 Relaying denied for [127.0.0.1]',
    );
    client.close();
    const denied = (await events('RelayDenied')).filter((e) => e.data.reason === 'not-authenticated');
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({
      accountId: null,
      data: { clientIp: '127.0.0.1', mailFrom: 'someone@elsewhere.test' },
    });
  });

  it('refuses bad credentials with 535 5.7.8', async () => {
    const { client } = await connect(t.smtpsPort, { tls: true });
    await client.command('EHLO client.test');
    expect(await client.line(`AUTH PLAIN ${authPlain('sender', 'wrong')}`)).toBe(
      '535 5.7.8 Authentication credentials invalid',
    );
    expect(await client.line(`AUTH PLAIN ${authPlain('nobody', 'wrong')}`)).toBe(
      '535 5.7.8 Authentication credentials invalid',
    );
    client.close();
  });

  it('refuses a From outside allowedFrom after DATA and records RelayDenied for the account', async () => {
    const client = await authenticatedSession();
    await client.line('MAIL FROM:<bounce@example.com>');
    await client.line('RCPT TO:<rcpt@example.org>');
    expect(await sendData(client, message('"Mallory Spoof" <ceo@other.test>'))).toBe(
      '550 5.7.1 Relaying denied for [127.0.0.1] / "Mallory Spoof"',
    );
    client.close();
    const denied = (await events('RelayDenied')).filter((e) => e.data.reason === 'from-not-allowed');
    expect(denied).toHaveLength(1);
    expect(denied[0]?.accountId).toEqual(expect.any(String));
    expect(denied[0]?.data).toMatchObject({
      from: 'ceo@other.test',
      fromName: 'Mallory Spoof',
      subject: 'hello',
    });
  });

  it('relays without AUTH for a client IP in an account allow-list (longest prefix wins)', async () => {
    const wide = await t.admin('POST', '/v1/accounts', {
      name: 'Wide',
      username: 'wide',
      password: 'a long enough password',
      allowedFrom: ['*'],
      allowedIps: ['127.0.0.0/8'],
    });
    const narrow = await t.admin('POST', '/v1/accounts', {
      name: 'Narrow',
      username: 'narrow',
      password: 'a long enough password',
      allowedFrom: ['*'],
      allowedIps: ['127.0.0.1/32'],
    });
    expect([wide.status, narrow.status]).toEqual([201, 201]);
    // The ingress remembers an IP's allow-list answer for a few seconds: wait for the new one.
    let client: SmtpTestClient | undefined;
    const deadline = Date.now() + 15_000;
    while (!client) {
      const session = (await connect(t.smtpPort)).client;
      await session.command('EHLO client.test');
      await session.line('MAIL FROM:<app@anything.test>');
      const rcpt = await session.line('RCPT TO:<rcpt@example.org>');
      if (rcpt === '250 2.1.5 Accepted') client = session;
      else if (Date.now() > deadline) expect(rcpt).toBe('250 2.1.5 Accepted');
      else await sleep(500);
    }
    const reply = await sendData(client, message('app@anything.test'));
    expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
    client.close();
    const id = reply.split(' ').pop();
    const received = (await events('MessageReceived')).find((e) => e.messageId === id);
    expect(received).toMatchObject({ accountId: narrow.body.id, data: { auth: 'ip-allow-list' } });
    // Later tests expect unauthenticated clients to be refused again.
    await t.admin('PATCH', `/v1/accounts/${wide.body.id}`, { allowedIps: ['10.0.0.0/8'] });
    await t.admin('PATCH', `/v1/accounts/${narrow.body.id}`, { allowedIps: ['10.1.0.0/16'] });
  });
});

describe('size', () => {
  it('refuses MAIL FROM with a SIZE above the limit at once', async () => {
    const client = await authenticatedSession();
    expect(await client.line(`MAIL FROM:<a@example.com> SIZE=${MAX_SIZE + 1}`)).toBe(
      `552 5.3.4 Error: message exceeds fixed maximum message size ${MAX_SIZE}`,
    );
    client.close();
  });

  it('accepts a body of exactly the limit and refuses one more octet, keeping nothing', async () => {
    const head = 'From: news@example.com\r\nSubject: size\r\n\r\n';
    const fill = (total: number): string => {
      const body = 'x'.repeat(total - head.length - 2);
      return head + body + '\r\n';
    };
    const before = await spooledBodies();
    const client = await authenticatedSession();
    await client.line('MAIL FROM:<a@example.com>');
    await client.line('RCPT TO:<r@example.org>');
    expect(await sendData(client, fill(MAX_SIZE) + '.\r\n')).toMatch(/^250 2\.0\.0 Ok: queued as /);
    await client.line('MAIL FROM:<a@example.com>');
    await client.line('RCPT TO:<r@example.org>');
    expect(await sendData(client, fill(MAX_SIZE + 1) + '.\r\n')).toBe(
      `552 5.3.4 Message exceeds the maximum size of ${MAX_SIZE} octets`,
    );
    // The session goes on after a refusal.
    expect(await client.line('NOOP')).toBe('250 2.0.0 OK');
    client.close();
    expect(await spooledBodies()).toBe(before + 1);
  });
});

describe('content', () => {
  it.each([
    ['\\n.\\n', '\n.\n'],
    ['\\r\\n.\\n', '\r\n.\n'],
    ['\\n.\\r\\n', '\n.\r\n'],
    ['\\r.\\r\\n', '\r.\r\n'],
  ])('an end-of-data trick (%s) never yields a second message', async (_name, trick) => {
    const client = await authenticatedSession();
    await client.line('MAIL FROM:<a@example.com>');
    await client.line('RCPT TO:<r@example.org>');
    const smuggled = `MAIL FROM:<a@example.com>\r\nRCPT TO:<smuggled@example.org>\r\nDATA\r\nFrom: news@example.com\r\n\r\nsmuggled`;
    const reply = await sendData(
      client,
      `From: news@example.com\r\nSubject: trick\r\n\r\nbefore${trick}${smuggled}\r\n.\r\n`,
    );
    expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
    expect(await client.line('NOOP')).toBe('250 2.0.0 OK');
    client.close();
    const id = reply.split(' ').pop() ?? '';
    const received = (await events('MessageReceived')).filter((e) => e.messageId === id);
    expect(received).toHaveLength(1);
    expect(
      (await events('MessageReceived')).some((e) => e.data.recipients.includes('smuggled@example.org')),
    ).toBe(false);
    // Stored with CRLF only: the trick is now a lone "." line inside the body, dot-stuffed on the way out.
    const first = received[0];
    if (!first) throw new Error('no event');
    const spool = new LocalDirectorySpool(join(t.dataDir, 'spool'));
    const stored = (await buffer(await spool.read(first.data.spoolKey))).toString('latin1');
    expect(stored).not.toMatch(/\r(?!\n)|(?<!\r)\n/);
    expect(stored).toContain('before\r\n');
    expect(stored).toContain('RCPT TO:<smuggled@example.org>');
  });

  it('adds Received, Message-ID and Date, and records the message before answering 250', async () => {
    const client = await authenticatedSession();
    expect(await client.line('MAIL FROM:<bounces@example.com> BODY=8BITMIME')).toBe('250 2.1.0 Accepted');
    await client.line('RCPT TO:<one@example.org>');
    await client.line('RCPT TO:<two@example.org>');
    const reply = await sendData(
      client,
      'From: "Ann" <ann@example.com>\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\n\r\nbody\r\n.\r\n',
    );
    client.close();
    const id = reply.split(' ').pop() ?? '';
    const received = (await events('MessageReceived')).find((e) => e.messageId === id);
    expect(received).toMatchObject({
      data: {
        mailFrom: 'bounces@example.com',
        recipients: ['one@example.org', 'two@example.org'],
        from: 'ann@example.com',
        fromName: 'Ann',
        subject: 'café',
        headerMessageId: `${id}@relay.test`,
        auth: 'smtp-auth',
        username: 'sender',
        tls: true,
        eightBitMime: true,
        smtpUtf8: false,
      },
    });
    if (!received) throw new Error('no event');
    const spool = new LocalDirectorySpool(join(t.dataDir, 'spool'));
    const stored = (await buffer(await spool.read(received.data.spoolKey))).toString();
    expect(stored).toMatch(
      new RegExp(
        `^Received: from client\\.test \\(\\[127\\.0\\.0\\.1\\]\\)\\r\\n\\tby relay\\.test with ESMTPSA id ${id};\\r\\n\\t.+ \\+0000\\r\\n` +
          `From: "Ann" <ann@example\\.com>\\r\\nSubject: =\\?UTF-8\\?Q\\?caf=C3=A9\\?=\\r\\n` +
          `Message-ID: <${id}@relay\\.test>\\r\\nDate: .+ \\+0000\\r\\n\\r\\nbody\\r\\n$`,
      ),
    );
    expect(received.data.size).toBe(Buffer.byteLength(stored));
  });

  it('refuses more recipients than the limit with 452 4.5.3', async () => {
    const client = await authenticatedSession();
    await client.line('MAIL FROM:<a@example.com>');
    for (let i = 0; i < 3; i++)
      expect(await client.line(`RCPT TO:<r${i}@example.org>`)).toBe('250 2.1.5 Accepted');
    expect(await client.line('RCPT TO:<r3@example.org>')).toBe('452 4.5.3 Error: too many recipients');
    client.close();
  });
});

describe('durable accept', () => {
  it('answers 451 4.3.0 and keeps no body when the event log cannot take the event', async () => {
    const admin = new pg.Client({ connectionString: t.db.url });
    await admin.connect();
    const before = await spooledBodies();
    const client = await authenticatedSession();
    await client.line('MAIL FROM:<a@example.com>');
    await client.line('RCPT TO:<r@example.org>');
    await admin.query('ALTER TABLE event_log RENAME TO event_log_down');
    try {
      expect(await sendData(client, message())).toBe(
        '451 4.3.0 Temporary failure: message not accepted, try again later',
      );
    } finally {
      await admin.query('ALTER TABLE event_log_down RENAME TO event_log');
      await admin.end();
    }
    client.close();
    expect(await spooledBodies()).toBe(before);
  });

  it('loses nothing accepted across a restart', async () => {
    const client = await authenticatedSession();
    await client.line('MAIL FROM:<a@example.com>');
    await client.line('RCPT TO:<r@example.org>');
    const reply = await sendData(client, message());
    client.close();
    const id = reply.split(' ').pop() ?? '';
    await t.restart();
    const received = (await events('MessageReceived')).find((e) => e.messageId === id);
    if (!received) throw new Error('MessageReceived lost');
    const spool = new LocalDirectorySpool(join(t.dataDir, 'spool'));
    const stored = (await buffer(await spool.read(received.data.spoolKey))).toString();
    expect(stored).toContain('Hello there.');
  });
});

describe('limits and shutdown', () => {
  it('lets a session in progress finish during a graceful stop', async () => {
    const client = await authenticatedSession();
    await client.line('MAIL FROM:<a@example.com>');
    await client.line('RCPT TO:<r@example.org>');
    expect(await client.line('DATA')).toMatch(/^354 /);
    const stopping = t.relay.stop();
    await sleep(200);
    client.write(message().slice(0, -3));
    client.write('.\r\n');
    expect((await client.reply()).pop()).toMatch(/^250 2\.0\.0 Ok: queued as /);
    client.close();
    await stopping;
    await t.restart();
  });
});

describe('abuse limits', () => {
  let strict: TestRelay;
  beforeAll(async () => {
    strict = await startTestRelay({
      SMTP_MAX_CONNECTIONS_PER_IP: '2',
      SMTP_AUTH_MAX_FAILURES: '4',
      SMTP_IDLE_TIMEOUT_MS: '1000',
    });
  });
  afterAll(async () => {
    await strict?.stop();
  });

  it('refuses a third connection from one IP with 421 4.7.0', async () => {
    await connect(strict.smtpPort);
    await connect(strict.smtpPort);
    const { client, greeting } = await connect(strict.smtpPort);
    expect(greeting).toEqual(['421 4.7.0 Too many connections from [127.0.0.1]; try again later']);
    await client.waitForClose();
    closeAll();
    await sleep(100);
    const again = await connect(strict.smtpPort);
    expect(again.greeting[0]).toMatch(/^220 /);
  });

  it('closes a session idle past SMTP_IDLE_TIMEOUT_MS with 421', async () => {
    const { client } = await connect(strict.smtpPort);
    await client.command('EHLO client.test');
    expect((await client.reply(5000))[0]).toMatch(/^421 4\.4\.2 .*Timeout/);
    await client.waitForClose();
  });

  it('refuses a command line longer than the limit and closes the session', async () => {
    const { client } = await connect(strict.smtpPort);
    await client.command('EHLO client.test');
    client.write(`MAIL FROM:<${'a'.repeat(5000)}@example.com>\r\n`);
    expect((await client.reply())[0]).toMatch(/^421 4\.\d\.\d Error: Command line too long/);
    await client.waitForClose();
  });
  // Last: it locks 127.0.0.1 out of this relay.
  it('slows down repeated AUTH failures from one IP, then refuses it with 421 4.7.0', async () => {
    const { client } = await connect(strict.smtpsPort, { tls: true });
    await client.command('EHLO client.test');
    for (let i = 0; i < 4; i++) {
      expect(await client.line(`AUTH PLAIN ${authPlain('guess', `pw${i}`)}`)).toBe(
        '535 5.7.8 Authentication credentials invalid',
      );
    }
    expect(await client.line(`AUTH PLAIN ${authPlain('guess', 'pw4')}`)).toBe(
      '421 4.7.0 Too many failed authentication attempts; try again later',
    );
    await client.waitForClose();
    const next = await connect(strict.smtpPort);
    expect(next.greeting).toEqual(['421 4.7.0 Too many failed authentication attempts; try again later']);
  });
});
