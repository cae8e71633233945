import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
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

const SENDER = 'bounces@example.com';

describe.each([
  ['Postgres', (): Record<string, string> => ({})],
  ['Kafka', (): Record<string, string> => kafkaEnv(inject('kafkaBrokers'))],
])('monthly quota, overage and resend on the %s event log', (_adapter, adapterEnv) => {
  let mx: CaptureMx;
  let first: TestRelay;
  let second: TestRelay;
  let log: EventLog;

  async function account(username: string, plan: JsonObject): Promise<string> {
    const created = await first.admin('POST', '/v1/accounts', {
      name: username,
      username,
      password: 'correct horse battery staple',
      allowedFrom: ['@example.com'],
      ...plan,
    });
    expect(created.status).toBe(201);
    return created.body.id ?? '';
  }

  const send = (relay: TestRelay, username: string, to: string, subject: string): Promise<string> =>
    submitRaw(
      relay.smtpPort,
      { user: username, pass: 'correct horse battery staple' },
      { from: SENDER, to: [to] },
      `From: News <news@example.com>\r\nSubject: ${subject}\r\n\r\nHello\r\n`,
    );

  /** Messages the capture MX got for `prefix*`, excluding notifications. */
  const arrived = (prefix: string): number =>
    mx.messages.filter((m) => m.mailFrom !== '' && m.recipients.some((r) => r.startsWith(prefix))).length;

  beforeAll(async () => {
    mx = await new CaptureMx().start();
    const env = { ...adapterEnv(), DELIVERY_SMART_HOST: `127.0.0.1:${mx.port}` };
    first = await startTestRelay(env);
    // A second relay process on the same database and log: decisions must stay exact across both.
    second = await startTestRelay(env, { shareWith: first });
    log = await openLogReader(first.db, first.config);
  });

  afterAll(async () => {
    await log?.close();
    await second?.stop();
    await first?.stop();
    await mx?.stop();
  });

  it('with a limit of 5, queues exactly 5 of 15 messages sent at once over 5 connections and two processes, across a restart', async () => {
    const id = await account('limited', { monthlyMessageLimit: 5 });
    const relays = [first, second, first, second, first];
    const sent = await Promise.all(
      relays.map(async (relay, connection) => {
        const ids: string[] = [];
        for (let i = 0; i < 3; i++)
          ids.push(
            await send(relay, 'limited', `held${connection * 3 + i}@dest.test`, `m${connection}-${i}`),
          );
        return ids;
      }),
    );
    await second.restart();
    const messageIds = sent.flat();
    await waitFor('15 decisions', async () => {
      const queued = await eventsOf(log, 'MessageQueued');
      const held = await eventsOf(log, 'QuotaExceeded');
      const decided = new Set([...queued, ...held].map((e) => e.messageId));
      return messageIds.every((m) => decided.has(m)) ? true : undefined;
    });
    await waitFor('5 deliveries', async () => (arrived('held') >= 5 ? true : undefined));
    await sleep(1500);
    expect(arrived('held')).toBe(5);
    const held = (await eventsOf(log, 'QuotaExceeded')).filter((e) => messageIds.includes(e.messageId ?? ''));
    expect(held.flatMap((e) => e.data.recipients)).toHaveLength(10);
    // One notification per held message, to the envelope sender.
    await waitFor('10 notifications', async () =>
      mx.deliveredTo(SENDER).filter((m) => m.mailFrom === '' && /limit/i.test(m.raw.toString())).length >= 10
        ? true
        : undefined,
    );
    const usage = await first.admin('GET', `/v1/accounts/${id}/usage`);
    expect(usage.body).toMatchObject({ messages: 5, limits: { messages: 5 } });

    // The upgrade, then the support agent's resend: a dry run first, then the real one.
    expect((await first.admin('PATCH', `/v1/accounts/${id}`, { monthlyMessageLimit: 100 })).status).toBe(200);
    const dryRun = await first.admin('POST', `/v1/accounts/${id}/resends`, { dryRun: true });
    expect(dryRun.status).toBe(200);
    expect(dryRun.body.total).toBe(10);
    expect(arrived('held')).toBe(5);
    const resend = await first.admin('POST', `/v1/accounts/${id}/resends`, {});
    expect(resend.status).toBe(202);
    await waitFor('the 10 held messages', async () => (arrived('held') >= 15 ? true : undefined));
    const progress = await waitFor('the resend to finish', async () => {
      const r = await first.admin('GET', `/v1/resends/${resend.body.id ?? ''}`);
      return r.body.status === 'done' ? r.body : undefined;
    });
    expect(progress).toMatchObject({
      total: 10,
      resubmitted: 10,
      delivered: 10,
      overQuotaAgain: 0,
      failed: 0,
    });
    for (let n = 0; n < 15; n++)
      expect(mx.deliveredTo(`held${n}@dest.test`).filter((m) => m.mailFrom !== '')).toHaveLength(1);

    // Again: nothing more is resent.
    const again = await first.admin('POST', `/v1/accounts/${id}/resends`, {});
    expect(again.status).toBe(202);
    await waitFor('the second resend', async () => {
      const r = await first.admin('GET', `/v1/resends/${again.body.id ?? ''}`);
      return r.body.status === 'done' ? r.body : undefined;
    });
    await sleep(1500);
    expect(arrived('held')).toBe(15);
  });

  it('never holds an overage account back: 10 messages with a limit of 5 are all delivered, 5 counted as overage', async () => {
    const id = await account('overage', { monthlyMessageLimit: 5, overageAllowed: true });
    for (let i = 0; i < 10; i++) await send(i % 2 ? second : first, 'overage', `over${i}@dest.test`, `o${i}`);
    await waitFor('10 deliveries', async () => (arrived('over') >= 10 ? true : undefined));
    const usage = await waitFor('the usage', async () => {
      const u = await first.admin('GET', `/v1/accounts/${id}/usage`);
      return u.body.messages === 10 ? u.body : undefined;
    });
    expect(usage).toMatchObject({ messages: 10, overageAllowed: true, overage: { messages: 5 } });
  });

  it('refuses a resend reaching back more than 72 hours, and leaves mail held before `since` alone', async () => {
    const id = await account('strict', { monthlyMessageLimit: 0 });
    const tooOld = new Date(Date.now() - 73 * 3_600_000).toISOString();
    const refused = await first.admin('POST', `/v1/accounts/${id}/resends`, { since: tooOld });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toMatch(/72 hours/);

    const messageId = await send(first, 'strict', 'early@dest.test', 'held early');
    await waitFor('QuotaExceeded', async () => (await eventsOf(log, 'QuotaExceeded', messageId))[0]);
    await sleep(1100);
    await first.admin('PATCH', `/v1/accounts/${id}`, { monthlyMessageLimit: 100 });
    const since = new Date(Date.now() - 1000).toISOString();
    const resend = await first.admin('POST', `/v1/accounts/${id}/resends`, { since });
    expect(resend.status).toBe(202);
    const progress = await waitFor('the resend', async () => {
      const r = await first.admin('GET', `/v1/resends/${resend.body.id ?? ''}`);
      return r.body.status === 'done' ? r.body : undefined;
    });
    expect(progress).toMatchObject({ total: 0, resubmitted: 0 });
    await sleep(1000);
    expect(arrived('early')).toBe(0);
  });
});
