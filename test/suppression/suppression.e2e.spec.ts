import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { EventLog } from '@relay/event-log';
import { CaptureMx, type CapturedMessage } from '@relay/testing';
import { eventsOf, submitRaw, waitFor } from '../support/relay-client.js';
import { kafkaEnv, openLogReader, startTestRelay, type TestRelay } from '../support/test-relay.js';

const auth = { user: 'sender', pass: 'correct horse battery staple' };
const SENDER = 'bounces@example.com';
const BOUNCE_SENTENCE = "BouncedEmailAddressException: Email address is on account's Bounce list.";
const UNSUBSCRIBE_SENTENCE =
  "UnsubscribedEmailAddressException: Email address is on account's Unsubscribe list.";

describe.each([
  ['Postgres', (): Record<string, string> => ({})],
  ['Kafka', (): Record<string, string> => kafkaEnv(inject('kafkaBrokers'))],
])('Bounce and Unsubscribe lists on the %s event log', (_adapter, adapterEnv) => {
  let mx: CaptureMx;
  let t: TestRelay;
  let log: EventLog;
  let accountId: string;

  const send = (to: string[], subject: string, from = 'News <news@example.com>'): Promise<string> =>
    submitRaw(
      t.smtpPort,
      auth,
      { from: SENDER, to },
      `From: ${from}\r\nSubject: ${subject}\r\n\r\nHello\r\n`,
    );

  /** Notifications (null return path) that reached `to`. */
  const notificationsTo = (to: string): CapturedMessage[] =>
    mx.deliveredTo(to).filter((m) => m.mailFrom === '');

  beforeAll(async () => {
    mx = await new CaptureMx().start();
    t = await startTestRelay({
      ...adapterEnv(),
      DELIVERY_SMART_HOST: `127.0.0.1:${mx.port}`,
      DELIVERY_RETRY_SCHEDULE: '1s',
    });
    log = await openLogReader(t.db, t.config);
    const created = await t.admin('POST', '/v1/accounts', {
      name: 'Sender',
      username: auth.user,
      password: auth.pass,
      allowedFrom: ['@example.com'],
    });
    expect(created.status).toBe(201);
    accountId = created.body.id ?? '';
  });

  afterAll(async () => {
    await log?.close();
    await t?.stop();
    await mx?.stop();
  });

  it('lists an address that bounced 550 5.1.1, then suppresses it and notifies the sender with the exact sentence', async () => {
    mx.setRule((rcpt) =>
      rcpt === 'gone@dest.test' ? { code: 550, message: '5.1.1 User unknown' } : undefined,
    );
    const first = await send(['gone@dest.test'], 'first');
    await waitFor('Bounced', async () => (await eventsOf(log, 'Bounced', first))[0]);
    await waitFor('the listing', async () => {
      const listed = await t.admin('GET', `/v1/accounts/${accountId}/suppressions?list=bounce`);
      const items = (listed.body.items ?? []) as { address: string }[];
      return items.some((i) => i.address === 'gone@dest.test') ? true : undefined;
    });
    const offered = mx.attemptsFor('gone@dest.test');

    const second = await send(['gone@dest.test'], 'second');
    const suppressed = await waitFor(
      'Suppressed',
      async () => (await eventsOf(log, 'Suppressed', second))[0],
    );
    expect(suppressed.data).toMatchObject({ recipient: 'gone@dest.test', list: 'bounce' });
    const notice = await waitFor('the notification', async () =>
      notificationsTo(SENDER).find((m) => m.raw.toString().includes(second)),
    );
    const text = notice.raw.toString();
    expect(text).toContain(BOUNCE_SENTENCE);
    expect(text).toMatch(/Content-Type: multipart\/report; report-type=delivery-status/);
    expect(text).toContain('Final-Recipient: rfc822; gone@dest.test');
    expect(mx.attemptsFor('gone@dest.test')).toBe(offered);
    expect(await eventsOf(log, 'NotificationSent', second)).toHaveLength(1);
  });

  it('suppresses an address added to the Unsubscribe list through the API and notifies the From address', async () => {
    mx.setRule(() => undefined);
    const added = await t.admin('POST', `/v1/accounts/${accountId}/suppressions`, {
      list: 'unsubscribe',
      address: 'Reader@Dest.TEST',
    });
    expect(added.status).toBe(202);
    await waitFor('the listing', async () => {
      const listed = await t.admin('GET', `/v1/accounts/${accountId}/suppressions?list=unsubscribe`);
      return ((listed.body.items ?? []) as unknown[]).length > 0 ? true : undefined;
    });
    // Domains compare without case; the local part as given.
    const id = await send(['Reader@dest.test', 'clean@dest.test'], 'mixed', 'Shop <shop@example.com>');
    const suppressed = await waitFor('Suppressed', async () => (await eventsOf(log, 'Suppressed', id))[0]);
    expect(suppressed.data).toMatchObject({ recipient: 'Reader@dest.test', list: 'unsubscribe' });
    await waitFor('Delivered', async () => (await eventsOf(log, 'Delivered', id))[0]);
    expect(mx.deliveredTo('clean@dest.test').some((m) => m.raw.toString().includes('Subject: mixed'))).toBe(
      true,
    );
    expect(mx.deliveredTo('reader@dest.test').some((m) => m.raw.toString().includes('Subject: mixed'))).toBe(
      false,
    );
    const notice = await waitFor('the notification', async () =>
      notificationsTo('shop@example.com').find((m) => m.raw.toString().includes(id)),
    );
    expect(notice.raw.toString()).toContain(UNSUBSCRIBE_SENTENCE);
  });

  it('lets mail through again once the address is removed', async () => {
    const removed = await t.admin(
      'DELETE',
      `/v1/accounts/${accountId}/suppressions/unsubscribe/Reader@dest.test`,
    );
    expect(removed.status).toBe(202);
    await waitFor('the removal', async () => {
      const listed = await t.admin('GET', `/v1/accounts/${accountId}/suppressions?list=unsubscribe`);
      return ((listed.body.items ?? []) as unknown[]).length === 0 ? true : undefined;
    });
    const id = await send(['Reader@dest.test'], 'welcome back');
    await waitFor('Delivered', async () => (await eventsOf(log, 'Delivered', id))[0]);
  });

  it('notifies once however often the log is replayed', async () => {
    const before = mx.messages.filter((m) => m.mailFrom === '').length;
    expect(before).toBeGreaterThanOrEqual(2);
    for (let replay = 0; replay < 2; replay++) {
      await t.relay.stop();
      await rewindGroup(t, 'notifier');
      await t.restart();
      // The rewound notifier reads the whole log again; give it time to get through it.
      await sleep(4000);
    }
    expect(mx.messages.filter((m) => m.mailFrom === '').length).toBe(before);
  });
});

/** Moves a consumer group back to the start of the log, as an operator replaying it would. */
async function rewindGroup(t: TestRelay, group: string): Promise<void> {
  const config = t.config;
  if (config.kafkaBrokers) {
    const admin = new Kafka({ brokers: config.kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await admin.resetOffsets({
        groupId: `${config.kafkaGroupPrefix}${group}`,
        topic: config.kafkaTopic,
        earliest: true,
      });
    } finally {
      await admin.disconnect();
    }
    return;
  }
  const client = new pg.Client({ connectionString: t.db.url });
  await client.connect();
  try {
    const deleted = await client.query('DELETE FROM event_log_consumer_positions WHERE group_name = $1', [
      group,
    ]);
    if (deleted.rowCount !== 1) throw new Error(`no position stored for ${group}`);
  } finally {
    await client.end();
  }
}
