import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { EventOfType, EventType } from '@relay/domain';
import type { EventLog } from '@relay/event-log';
import { CaptureMx } from '@relay/testing';
import { eventsOf, submitRaw, waitFor } from '../support/relay-client.js';
import {
  kafkaEnv,
  openLogReader,
  startTestRelay,
  type JsonObject,
  type TestRelay,
} from '../support/test-relay.js';

const PASSWORD = 'correct horse battery staple';

describe.each([
  ['Postgres', (): Record<string, string> => ({})],
  ['Kafka', (): Record<string, string> => kafkaEnv(inject('kafkaBrokers'))],
])('delivery end to end on the %s event log', (_adapter, adapterEnv) => {
  let mx: CaptureMx;
  let t: TestRelay;
  let log: EventLog;

  const events = <T extends EventType>(type: T, messageId?: string): Promise<EventOfType<T>[]> =>
    eventsOf(log, type, messageId);

  /** The delivery report of a message once `ready` holds for it. */
  async function reportOf(id: string, ready: (report: JsonObject) => boolean): Promise<JsonObject> {
    return waitFor(`the report of ${id}`, async () => {
      const response = await t.admin('GET', `/v1/messages/${id}`);
      return response.status === 200 && ready(response.body) ? response.body : undefined;
    });
  }

  /** Submits raw bytes as the client wrote them; returns the relay's message id. */
  const submit = (raw: string, to: string[]): Promise<string> =>
    submitRaw(t.smtpPort, { user: 'sender', pass: PASSWORD }, { from: 'bounces@example.com', to }, raw);

  beforeAll(async () => {
    mx = await new CaptureMx().start();
    t = await startTestRelay({
      ...adapterEnv(),
      DELIVERY_SMART_HOST: `127.0.0.1:${mx.port}`,
      DELIVERY_RETRY_SCHEDULE: '1s',
      BOUNCE_SMTP_PORT: '0',
    });
    log = await openLogReader(t.db, t.config);
    const created = await t.admin('POST', '/v1/accounts', {
      name: 'Sender',
      username: 'sender',
      password: PASSWORD,
      allowedFrom: ['@example.com'],
      // Nothing per recipient: recipients of one domain share a transaction, bytes stay as sent.
      listUnsubscribe: false,
    });
    expect(created.status).toBe(201);
  });

  afterAll(async () => {
    await log?.close();
    await t?.stop();
    await mx?.stop();
  });

  it('delivers the submitted bytes plus only the trace headers the relay adds', async () => {
    const raw =
      'From: "News" <news@example.com>\r\nTo: ok@dest.test\r\nSubject: exact bytes\r\n' +
      'Message-ID: <exact-1@example.com>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n\r\nLine one\r\n.leading dot\r\nLast line\r\n';
    const id = await submit(raw, ['ok@dest.test']);
    const delivered = await waitFor('Delivered', async () => (await events('Delivered', id))[0]);
    expect(delivered.data).toMatchObject({ recipient: 'ok@dest.test', attempt: 1, mx: '127.0.0.1' });
    expect(delivered.data.remoteReply).toMatch(/^250 /);
    const captured = mx.deliveredTo('ok@dest.test').at(-1);
    const text = captured?.raw.toString() ?? '';
    const received = /^Received: [^\r]*\r\n\t[^\r]*\r\n\t[^\r]*\r\n/.exec(text)?.[0] ?? '';
    expect(received).toContain(`id ${id};`);
    expect(text.slice(received.length)).toBe(raw);
    expect(captured?.mailFrom).toMatch(new RegExp(`^bounces\\+${id}-[0-9a-f]{8}@relay\\.test$`));

    // The delivery report shows it delivered, with the remote reply.
    const report = await reportOf(id, (r) => r.status === 'delivered');
    expect(report).toMatchObject({
      id,
      status: 'delivered',
      recipients: [
        expect.objectContaining({
          recipient: 'ok@dest.test',
          status: 'delivered',
          attempts: 1,
          lastReply: delivered.data.remoteReply,
        }),
      ],
    });
  });

  it('defers on 451 and delivers on the next attempt', async () => {
    mx.setRule((rcpt, attempt) =>
      rcpt === 'later@dest.test' && attempt === 1
        ? { code: 451, message: '4.3.0 Try again later' }
        : undefined,
    );
    const id = await submit('From: news@example.com\r\nSubject: later\r\n\r\nbody\r\n', ['later@dest.test']);
    const deferred = await waitFor('Deferred', async () => (await events('Deferred', id))[0]);
    expect(deferred.data).toMatchObject({
      recipient: 'later@dest.test',
      attempt: 1,
      remoteReply: '451 4.3.0 Try again later',
    });
    const delivered = await waitFor('Delivered', async () => (await events('Delivered', id))[0]);
    expect(delivered.data.attempt).toBe(2);
    expect(mx.deliveredTo('later@dest.test')).toHaveLength(1);
    const report = await reportOf(id, (r) => r.status === 'delivered');
    const recipient = (report.recipients as { timeline: { type: string }[]; attempts: number }[])[0];
    expect(recipient?.attempts).toBe(2);
    expect(recipient?.timeline.map((entry) => entry.type)).toEqual([
      'MessageReceived',
      'MessageQueued',
      'Deferred',
      'Delivered',
    ]);
  });

  it('bounces on 550 5.1.1 as hard, and delivers the other recipient of the domain in the same transaction', async () => {
    mx.setRule((rcpt) =>
      rcpt === 'nobody@dest.test' ? { code: 550, message: '5.1.1 No such user' } : undefined,
    );
    const id = await submit('From: news@example.com\r\nSubject: mixed\r\n\r\nbody\r\n', [
      'nobody@dest.test',
      'somebody@dest.test',
    ]);
    const bounced = await waitFor('Bounced', async () => (await events('Bounced', id))[0]);
    expect(bounced.data).toMatchObject({
      recipient: 'nobody@dest.test',
      bounceClass: 'hard',
      status: '5.1.1',
      source: 'smtp',
      diagnostic: '550 5.1.1 No such user',
    });
    await waitFor('Delivered', async () => (await events('Delivered', id))[0]);
    const transaction = mx.deliveredTo('somebody@dest.test');
    expect(transaction).toHaveLength(1);
    expect(transaction[0]?.mailFrom).toMatch(new RegExp(`^bounces\\+${id}@relay\\.test$`));
    const report = await reportOf(id, (r) => r.status === 'partially-delivered');
    expect(report.recipients).toEqual([
      expect.objectContaining({
        recipient: 'nobody@dest.test',
        status: 'bounced',
        bounceClass: 'hard',
        statusCode: '5.1.1',
      }),
      expect.objectContaining({ recipient: 'somebody@dest.test', status: 'delivered' }),
    ]);
  });

  it('loses nothing and delivers nothing twice when the relay restarts in the middle of a run', async () => {
    mx.setRule(() => undefined);
    const before = mx.messages.length;
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      ids.push(
        await submit(`From: news@example.com\r\nSubject: run ${i}\r\n\r\nbody ${i}\r\n`, [
          `run${i}@dest.test`,
        ]),
      );
      if (i === 14) await t.restart();
    }
    await mx.waitForMessages(before + 30);
    await sleep(1500);
    for (let i = 0; i < 30; i++) expect(mx.deliveredTo(`run${i}@dest.test`)).toHaveLength(1);
    expect(mx.messages.length).toBe(before + 30);
    const delivered = new Set((await events('Delivered')).map((e) => e.messageId));
    for (const id of ids) expect(delivered.has(id)).toBe(true);
  });
});
