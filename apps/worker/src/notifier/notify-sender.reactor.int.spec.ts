import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Test, type TestingModule } from '@nestjs/testing';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, LOGGER, RELAY_CONFIG, silentLogger, type RelayConfig } from '@relay/config';
import { parseDeliveryStatusNotification } from '@relay/delivery';
import {
  createEvent,
  EVENT_SCHEMAS,
  type EventOfType,
  type EventType,
  type RelayEvent,
  type Suppressed,
} from '@relay/domain';
import { EVENT_LOG, PostgresEventLog } from '@relay/event-log';
import {
  ACCOUNT_ENTITIES,
  AccountRenderSettingsRepository,
  AccountsRepository,
  createDataSource,
  OutboxRelay,
  SuppressionsRepository,
} from '@relay/persistence';
import { LocalDirectorySpool, SPOOL } from '@relay/spool';
import { CaptureMx, createTestDatabase, type CapturedMessage, type TestDatabase } from '@relay/testing';
import { DeliverWhenQueuedReactor } from '../delivery/deliver-when-queued.reactor.js';
import { DeliveryDispatcher } from '../delivery/delivery-dispatcher.js';
import { DeliveryQueueRepository } from '../delivery/delivery-queue.repository.js';
import { MessageRenderer } from '../delivery/message-renderer.js';
import { RENDER_SETTINGS } from '../delivery/render-settings.port.js';
import { SUPPRESSION_LOOKUP } from '../policy/suppression-lookup.port.js';
import { waitFor as waitForValue } from '../testing/wait-for.js';
import { NotificationMailer } from './notification-mailer.js';
import { NotificationsRepository } from './notifications.repository.js';
import { NotifySenderReactor } from './notify-sender.reactor.js';
import { newRelayMessageId } from '@relay/domain';
import { BOUNCE_LIST_SENTENCE, UNSUBSCRIBE_LIST_SENTENCE } from './sender-notification.decide.js';

const SENDER = 'bounces@shop.example';
const AUTHOR = 'orders@shop.example';
/** The capture MX refuses these as unknown users. */
const UNKNOWN = new Set(['bob@unknown.example', 'gone-sender@shop.example']);

const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
ajv.addFormat('date-time', { type: 'string', validate: (value: string) => !Number.isNaN(Date.parse(value)) });
const validNotificationSent = ajv.compile(EVENT_SCHEMAS.NotificationSent);

const waitFor = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> =>
  waitForValue(what, probe, 50);

/** The top-level headers of a captured message, unfolded. */
function headerOf(message: CapturedMessage, name: string): string | undefined {
  const text = message.raw.toString('utf8');
  const head = text.slice(0, text.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
  return new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(head)?.[1];
}

describe('NotifySenderReactor', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let eventLog: PostgresEventLog;
  let outbox: OutboxRelay;
  let spoolDir: string;
  let spool: LocalDirectorySpool;
  let mx: CaptureMx;
  let config: RelayConfig;
  let moduleRef: TestingModule;
  /** An account with bounceNotifications on, and one with it off. */
  let asks: string;
  let quiet: string;
  let sentinels = 0;

  async function startWorker(): Promise<TestingModule> {
    const ref = await Test.createTestingModule({
      providers: [
        { provide: RELAY_CONFIG, useValue: config },
        { provide: LOGGER, useValue: silentLogger },
        { provide: EVENT_LOG, useValue: eventLog },
        { provide: SPOOL, useValue: spool },
        { provide: DataSource, useValue: dataSource },
        AccountsRepository,
        DeliveryQueueRepository,
        {
          provide: RENDER_SETTINGS,
          inject: [DataSource],
          useFactory: (dataSource: DataSource) =>
            new AccountRenderSettingsRepository(dataSource, {
              dkimKeySecret: 'test-dkim-key-secret-0123456789',
            }),
        },
        MessageRenderer,
        DeliveryDispatcher,
        DeliverWhenQueuedReactor,
        NotificationsRepository,
        SuppressionsRepository,
        { provide: SUPPRESSION_LOOKUP, useExisting: SuppressionsRepository },
        NotificationMailer,
        NotifySenderReactor,
      ],
    }).compile();
    await ref.init();
    return ref;
  }

  async function spoolMessage(messageId: string, subject: string): Promise<string> {
    const body =
      `Received: from app (app [192.0.2.10])\r\n\tby relay.test with ESMTPA id ${messageId};\r\n` +
      `\tSun, 29 Nov 2026 01:40:29 +0000\r\n` +
      `From: Shop <${AUTHOR}>\r\nTo: ann@example.org\r\nSubject: ${subject}\r\n` +
      `Message-ID: <${messageId}@app.shop.example>\r\n\r\nSecret body text of ${messageId}.\r\n`;
    return (await spool.write(messageId, Readable.from([Buffer.from(body)]))).key;
  }

  async function suppressed(
    list: 'bounce' | 'unsubscribe',
    recipients: readonly string[],
    options: { accountId?: string; mailFrom?: string; messageId?: string } = {},
  ): Promise<Suppressed[]> {
    const messageId = options.messageId ?? newRelayMessageId();
    const spoolKey = await spoolMessage(messageId, `Order ${messageId}`);
    return recipients.map((recipient) =>
      createEvent('Suppressed', {
        accountId: options.accountId ?? quiet,
        messageId,
        data: { recipient, list, mailFrom: options.mailFrom ?? SENDER, from: AUTHOR, spoolKey },
      }),
    );
  }

  async function events<T extends EventType>(type: T): Promise<EventOfType<T>[]> {
    const out: EventOfType<T>[] = [];
    const range = {
      from: new Date(Date.now() - 3_600_000),
      to: new Date(Date.now() + 60_000),
      types: [type],
    };
    for await (const { event } of eventLog.readRange(range)) out.push(event as EventOfType<T>);
    return out;
  }

  const reportsTo = (address: string): CapturedMessage[] => mx.deliveredTo(address);

  /**
   * Appends `events`, then a sentinel Suppressed whose report proves that the notifier has
   * handled everything before it (one partition, handled in order).
   */
  async function appendAndSettle(batch: readonly RelayEvent[]): Promise<void> {
    const sentinel = `sentinel-${++sentinels}@shop.example`;
    await eventLog.append([
      ...batch,
      ...(await suppressed('bounce', ['x@example.org'], { mailFrom: sentinel })),
    ]);
    await waitFor(`the report to ${sentinel}`, () => (reportsTo(sentinel).length > 0 ? true : undefined));
  }

  async function notifiedKeys(messageId: string): Promise<number> {
    const [row] = await dataSource.query<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM notifications WHERE message_id = $1`,
      [messageId],
    );
    return row?.n ?? 0;
  }

  beforeAll(async () => {
    db = await createTestDatabase('notifier');
    dataSource = await createDataSource({ url: db.url, entities: [...ACCOUNT_ENTITIES] }).initialize();
    eventLog = await PostgresEventLog.connect({ url: db.url, logger: silentLogger });
    outbox = new OutboxRelay({ url: db.url, append: (e) => eventLog.append(e), logger: silentLogger });
    outbox.start();
    spoolDir = await mkdtemp(join(tmpdir(), 'relay-notifier-'));
    spool = new LocalDirectorySpool(spoolDir);
    mx = await new CaptureMx((recipient) =>
      UNKNOWN.has(recipient) ? { code: 550, message: '5.1.1 User unknown' } : undefined,
    ).start();
    config = loadConfig({ RELAY_HOSTNAME: 'relay.test', DELIVERY_SMART_HOST: `127.0.0.1:${mx.port}` });
    const accounts = new AccountsRepository(dataSource);
    const account = (name: string, bounceNotifications: boolean) =>
      accounts.create({
        name,
        username: name,
        password: 'pw-pw-pw-pw',
        allowedFrom: ['*'],
        bounceNotifications,
      });
    asks = (await account('asks', true)).id;
    quiet = (await account('quiet', false)).id;
    moduleRef = await startWorker();
  });

  afterAll(async () => {
    await moduleRef?.close();
    await outbox?.stop();
    await eventLog?.close();
    await mx?.stop();
    await dataSource?.destroy();
    await db?.drop();
    if (spoolDir) await rm(spoolDir, { recursive: true, force: true });
  });

  let firstMessage: string;

  it('mails the envelope sender one Bounce-list report per message, from MAIL FROM:<>', async () => {
    const batch = await suppressed('bounce', ['ann@example.org', 'carl@example.org']);
    firstMessage = batch[0]?.messageId ?? '';
    await eventLog.append(batch);
    const [report] = await waitFor('the report', () =>
      reportsTo(SENDER).length > 0 ? reportsTo(SENDER) : undefined,
    );
    if (!report) throw new Error('no report');

    expect(report.mailFrom).toBe('');
    expect(report.recipients).toEqual([SENDER]);
    const raw = report.raw.toString('utf8');
    expect(raw.split('\r\n')).toContain(BOUNCE_LIST_SENTENCE);
    expect(headerOf(report, 'From')).toBe('Mail Delivery System <MAILER-DAEMON@relay.test>');
    expect(headerOf(report, 'Auto-Submitted')).toBe('auto-replied');
    expect(headerOf(report, 'Content-Type')).toMatch(/^multipart\/report; report-type=delivery-status;/);
    expect(headerOf(report, 'Message-ID')).toMatch(/^<[0-9a-z]{25}@relay\.test>$/);
    expect(headerOf(report, 'Date')).toBeDefined();
    // The original headers, read from the spool, and never the body.
    expect(raw).toContain(`Subject: Order ${firstMessage}\r\n`);
    expect(raw).not.toContain('Secret body text');

    expect(parseDeliveryStatusNotification(report.raw)).toEqual({
      reportingMta: 'relay.test',
      recipients: ['ann@example.org', 'carl@example.org'].map((recipient) => ({
        finalRecipient: recipient,
        action: 'failed',
        status: '5.7.1',
        diagnosticType: 'X-Relay',
        diagnosticCode: BOUNCE_LIST_SENTENCE,
      })),
    });

    const sent = await waitFor('NotificationSent', async () => {
      const found = (await events('NotificationSent')).filter((e) => e.messageId === firstMessage);
      return found.length > 0 ? found : undefined;
    });
    expect(sent).toHaveLength(1);
    expect(validNotificationSent(sent[0])).toBe(true);
    expect(sent[0]?.data).toEqual({
      reason: 'suppressed-bounce',
      notified: SENDER,
      recipients: ['ann@example.org', 'carl@example.org'],
      notificationMessageId: /^<([^@]+)@/.exec(headerOf(report, 'Message-ID') ?? '')?.[1],
    });
  });

  it("mails the message's From address the Unsubscribe-list report", async () => {
    const batch = await suppressed('unsubscribe', ['dora@example.org']);
    await eventLog.append(batch);
    const [report] = await waitFor('the report', () =>
      reportsTo(AUTHOR).length > 0 ? reportsTo(AUTHOR) : undefined,
    );
    expect(report?.mailFrom).toBe('');
    expect(report?.raw.toString('utf8').split('\r\n')).toContain(UNSUBSCRIBE_LIST_SENTENCE);
  });

  it('notifies once when the same events are delivered again', async () => {
    const before = reportsTo(SENDER).length;
    // Kafka may hand the same fact over twice, under a new event id.
    const again = (await events('Suppressed'))
      .filter((e) => e.messageId === firstMessage)
      .map((e) =>
        createEvent('Suppressed', { accountId: e.accountId, messageId: firstMessage, data: e.data }),
      );
    await appendAndSettle(again);

    // And the whole log once more: the group's position is lost and it starts from the beginning.
    await moduleRef.close();
    await dataSource.query(`DELETE FROM event_log_consumer_positions WHERE group_name = 'notifier'`);
    const sentinelReports = mx.messages.length;
    moduleRef = await startWorker();
    await appendAndSettle([]);
    await sleep(300);

    expect(reportsTo(SENDER)).toHaveLength(before);
    expect(await notifiedKeys(firstMessage)).toBe(2);
    // Only the new sentinel's report came in after the restart.
    expect(mx.messages.length).toBe(sentinelReports + 1);
  });

  it('sends one report when two handlers race for the same recipients', async () => {
    const [event] = await suppressed('bounce', ['erin@example.org'], { mailFrom: 'race@shop.example' });
    if (!event) throw new Error('no event');
    const notification = {
      cause: { reason: 'suppressed-bounce' as const },
      accountId: quiet,
      messageId: event.messageId ?? '',
      notified: 'race@shop.example',
      recipients: [{ recipient: 'erin@example.org', status: '5.7.1' }],
      causationId: event.id,
      arrivalDate: new Date(),
      spoolKey: event.data.spoolKey,
    };
    const mailer = moduleRef.get(NotificationMailer);
    const outcomes = await Promise.all([
      mailer.send(notification),
      mailer.send(notification),
      mailer.send(notification),
    ]);
    expect(outcomes.filter((o) => o === 'sent')).toHaveLength(1);
    await waitFor('the report', () => (reportsTo('race@shop.example').length > 0 ? true : undefined));
    await sleep(300);
    expect(reportsTo('race@shop.example')).toHaveLength(1);
    const [spooled] = await dataSource.query<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM notification_messages WHERE notified = $1`,
      ['race@shop.example'],
    );
    expect(spooled?.n).toBe(1);
  });

  it("never mails an address on the account's lists", async () => {
    await dataSource.query(
      `INSERT INTO suppressions (account_id, list, address_key, address, reason, source, created_at)
       VALUES ($1, 'unsubscribe', 'listed@shop.example', 'listed@shop.example', 'test', 'admin', now())`,
      [quiet],
    );
    const batch = await suppressed('bounce', ['fay@example.org'], { mailFrom: 'listed@shop.example' });
    await appendAndSettle(batch);
    expect(reportsTo('listed@shop.example')).toHaveLength(0);
    expect(await notifiedKeys(batch[0]?.messageId ?? '')).toBe(0);
  });

  it('never reports to the null sender', async () => {
    const batch = await suppressed('unsubscribe', ['gus@example.org'], { mailFrom: '' });
    await appendAndSettle(batch);
    expect(reportsTo(AUTHOR)).toHaveLength(1);
    expect(await notifiedKeys(batch[0]?.messageId ?? '')).toBe(0);
  });

  it('reports RelayDenied of a known account with the rebuilt headers, and never without an account', async () => {
    const denied = (accountId: string | null, mailFrom: string) =>
      createEvent('RelayDenied', {
        accountId,
        messageId: newRelayMessageId(),
        data: {
          reason: accountId === null ? 'not-authenticated' : 'from-not-allowed',
          clientIp: '203.0.113.9',
          mailFrom,
          recipients: ['hal@example.org'],
          ...(accountId === null
            ? {}
            : { from: 'ceo@other.example', fromName: 'The CEO', subject: 'Invoice 7' }),
        },
      });
    await appendAndSettle([denied(null, 'stranger@shop.example'), denied(quiet, 'app@shop.example')]);
    expect(reportsTo('stranger@shop.example')).toHaveLength(0);

    const [report] = await waitFor('the report', () =>
      reportsTo('app@shop.example').length > 0 ? reportsTo('app@shop.example') : undefined,
    );
    const raw = report?.raw.toString('utf8') ?? '';
    expect(report?.mailFrom).toBe('');
    expect(raw.split('\r\n')).toContain('Relaying denied for [203.0.113.9] / "The CEO"');
    expect(raw).toContain(
      'Content-Description: Undelivered Message Headers (rebuilt: the message was not kept)',
    );
    expect(raw).toContain('From: The CEO <ceo@other.example>\r\nSubject: Invoice 7\r\n');
  });

  it('reports a bounce when the account asks, never about a notification, and not otherwise', async () => {
    const queued = async (accountId: string, mailFrom: string) => {
      const messageId = newRelayMessageId();
      const spoolKey = await spoolMessage(messageId, `Bounce test ${messageId}`);
      return createEvent('MessageQueued', {
        accountId,
        messageId,
        data: {
          recipients: ['bob@unknown.example'],
          mailFrom,
          size: 300,
          spoolKey,
          period: '2026-11',
          smtpUtf8: false,
          eightBitMime: false,
          receivedAt: new Date().toISOString(),
        },
      });
    };
    const asking = await queued(asks, 'app@asks.example');
    const quietOne = await queued(quiet, 'app@quiet.example');
    // A Bounce-list report to an address that does not exist: the report itself bounces.
    const toGone = await suppressed('bounce', ['ivy@example.org'], {
      accountId: asks,
      mailFrom: 'gone-sender@shop.example',
    });
    await eventLog.append([asking, quietOne, ...toGone]);

    const [report] = await waitFor('the bounce report', () =>
      reportsTo('app@asks.example').length > 0 ? reportsTo('app@asks.example') : undefined,
    );
    expect(report?.mailFrom).toBe('');
    expect(headerOf(report as CapturedMessage, 'Subject')).toBe('Undelivered Mail Returned to Sender');
    expect(parseDeliveryStatusNotification(report?.raw ?? '')?.recipients).toEqual([
      {
        finalRecipient: 'bob@unknown.example',
        action: 'failed',
        status: '5.1.1',
        remoteMta: '127.0.0.1',
        diagnosticType: 'smtp',
        diagnosticCode: expect.stringMatching(/^550 5\.1\.1 User unknown/) as unknown,
      },
    ]);
    expect(report?.raw.toString('utf8')).toContain(`Subject: Bounce test ${asking.messageId}\r\n`);

    // The report to gone-sender bounced: the Bounced is about a notification.
    const gone = await waitFor('the notification to bounce', async () => {
      const sent = (await events('NotificationSent')).find(
        (e) => e.data.notified === 'gone-sender@shop.example',
      );
      if (!sent) return undefined;
      const bounces = (await events('Bounced')).filter(
        (b) => b.messageId === sent.data.notificationMessageId,
      );
      return bounces.length > 0 ? sent : undefined;
    });
    await waitFor('the quiet bounce', async () =>
      (await events('Bounced')).some((b) => b.messageId === quietOne.messageId) ? true : undefined,
    );
    await appendAndSettle([]);
    expect(await notifiedKeys(gone.data.notificationMessageId)).toBe(0);
    expect(await notifiedKeys(quietOne.messageId ?? '')).toBe(0);
    expect(reportsTo('app@quiet.example')).toHaveLength(0);
    expect(mx.attemptsFor('gone-sender@shop.example')).toBe(1);
  });

  it('mails one over-quota report per message, listing its held recipients', async () => {
    const messageId = newRelayMessageId();
    const spoolKey = await spoolMessage(messageId, 'Quota test');
    const held = createEvent('QuotaExceeded', {
      accountId: quiet,
      messageId,
      data: {
        recipients: ['jo@example.org', 'kim@example.org'],
        mailFrom: 'quota@shop.example',
        from: AUTHOR,
        size: 300,
        spoolKey,
        period: '2026-11',
        usage: { messages: 5, bytes: 1500 },
        limits: { messages: 5, bytes: null },
        smtpUtf8: false,
        eightBitMime: false,
      },
    });
    await appendAndSettle([held, { ...held, id: randomUUID() }]);
    await sleep(300);
    const reports = reportsTo('quota@shop.example');
    expect(reports).toHaveLength(1);
    const raw = reports[0]?.raw.toString('utf8') ?? '';
    expect(raw).toContain('Your account is over its monthly sending limit');
    expect(parseDeliveryStatusNotification(raw)?.recipients.map((r) => r.finalRecipient)).toEqual([
      'jo@example.org',
      'kim@example.org',
    ]);
  });

  it('queues a recorded notification whose handler died before the queue', async () => {
    const mailer = moduleRef.get(NotificationMailer);
    const id = newRelayMessageId();
    const key = (await spool.write(id, Readable.from([Buffer.from('From: x\r\n\r\nx\r\n')]))).key;
    await dataSource.query(
      `INSERT INTO notification_messages (notification_message_id, account_id, reason, notified, spool_key, size,
         smtp_utf8, eight_bit_mime, event_id, created_at)
       VALUES ($1, $2, 'suppressed-bounce', 'orphan@shop.example', $3, 14, false, false, gen_random_uuid(),
         now() - interval '5 minutes')`,
      [id, quiet, key],
    );
    expect(await mailer.requeueUnqueued(60_000)).toBe(1);
    const [report] = await waitFor('the requeued report', () =>
      reportsTo('orphan@shop.example').length > 0 ? reportsTo('orphan@shop.example') : undefined,
    );
    expect(report?.mailFrom).toBe('');
    expect(await mailer.requeueUnqueued(60_000)).toBe(0);
  });
});
