import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, type RelayEvent } from '@relay/domain';
import type { EventLog } from '@relay/event-log';
import { QuotaUsageProjector, type ProjectionRunner } from '@relay/persistence';
import {
  startAdminApiTestApp,
  until,
  type AdminApiTestApp,
  type Reply,
} from '../testing/admin-api-test-app.js';
import type { ProjectionStatus } from './projection-status.js';

let api: AdminApiTestApp;
let dataSource: DataSource;
let eventLog: EventLog;
let runner: ProjectionRunner;

const call = <T = Record<string, unknown>>(
  method: string,
  path: string,
  options: { token?: string | null } = {},
): Promise<Reply<T>> => api.request<T>(method, path, options);

const status = async (name: string): Promise<ProjectionStatus> => {
  const reply = await call<ProjectionStatus>('GET', `/v1/projections/${name}`);
  expect(reply.status).toBe(200);
  return reply.body;
};

/** The offset the Postgres log gives an event (as its adapter writes it: both parts zero-padded). */
async function offsetOf(event: RelayEvent): Promise<string> {
  const [row] = await dataSource.query<{ tx: string; position: string }[]>(
    `SELECT tx_id::text AS tx, position::text AS position FROM event_log WHERE event_id = $1`,
    [event.id],
  );
  return `${row!.tx.padStart(20, '0')}:${row!.position.padStart(20, '0')}`;
}

/** Waits until the quota projection's current generation has applied the log up to `event`. */
async function caughtUp(event: RelayEvent, generation: number): Promise<ProjectionStatus> {
  const offset = await offsetOf(event);
  return until(
    () => status('quota'),
    (s) => s.generation === generation && (s.positions[0]?.offset ?? '') >= offset,
    `generation ${generation} at ${offset}`,
    30_000,
  );
}

interface Row {
  account_id: string;
  period: string;
  messages: string;
  bytes: string;
}

const table = (): Promise<Row[]> =>
  dataSource.query(
    `SELECT account_id, period, messages::text AS messages, bytes::text AS bytes
     FROM quota_usage ORDER BY account_id COLLATE "C", period`,
  );

/**
 * A deterministic mixed run: messages of 1 to 3 recipients for two accounts over two months,
 * some recipients suppressed or held over quota, with receipts and deliveries between them.
 */
function mixedRun(count: number, accounts: readonly [string, string]): RelayEvent[] {
  let seed = 11;
  const random = (n: number): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return Math.floor((seed / 2 ** 31) * n);
  };
  const events: RelayEvent[] = [];
  for (let i = 0; i < count; i++) {
    const accountId = accounts[random(2)]!;
    const period = random(3) === 0 ? '2025-05' : '2025-06';
    const messageId = randomUUID();
    const common = { accountId, messageId, occurredAt: `${period}-20T10:00:00.000Z` };
    const spooled = { mailFrom: 'app@example.com', spoolKey: `spool/${messageId}` };
    const flags = { smtpUtf8: false, eightBitMime: false };
    const size = 100 + random(20_000);
    const recipients = Array.from({ length: 1 + random(3) }, (_, r) => `r${i}-${r}@example.org`);
    const fate = random(5);
    if (fate === 0)
      events.push(
        createEvent('Suppressed', {
          ...common,
          data: { ...spooled, from: 'app@example.com', recipient: recipients[0]!, list: 'bounce' },
        }),
      );
    else if (fate === 1)
      events.push(
        createEvent('QuotaExceeded', {
          ...common,
          data: {
            ...spooled,
            ...flags,
            from: 'app@example.com',
            recipients,
            size,
            period,
            usage: { messages: 0, bytes: 0 },
            limits: { messages: 0, bytes: null },
          },
        }),
      );
    else {
      events.push(
        createEvent('MessageQueued', {
          ...common,
          data: { ...spooled, ...flags, recipients, size, period, receivedAt: common.occurredAt },
        }),
      );
      events.push(
        createEvent('Delivered', {
          ...common,
          data: {
            recipient: recipients[0]!,
            mx: 'mx.example.org',
            remoteReply: '250 2.0.0 Ok',
            attempt: 1,
            latencyMs: 9,
          },
        }),
      );
    }
  }
  return events;
}

beforeAll(async () => {
  api = await startAdminApiTestApp({
    name: 'projections',
    eventLog: 'postgres',
    // A projector process beside the admin API; it looks for a rebuild every 100 ms (5 s in production).
    projections: [{ projection: new QuotaUsageProjector(), maxBatchSize: 25, generationCheckMs: 100 }],
  });
  ({ dataSource, eventLog } = api);
  runner = api.runners[0]!;
});

afterAll(async () => {
  await api?.close();
});

describe('/v1/projections', () => {
  it('rebuilds the quota read model: 202 with the new generation, then the same rows once caught up', async () => {
    const accounts: readonly [string, string] = [randomUUID(), randomUUID()];
    const events = mixedRun(240, accounts);
    for (let i = 0; i < events.length; i += 60) await eventLog.append(events.slice(i, i + 60));
    const lastQueued = events.findLast((e) => e.type === 'MessageQueued')!;

    const live = await caughtUp(lastQueued, 0);
    expect(live).toMatchObject({ name: 'quota', generation: 0, group: 'projection-quota', rebuiltAt: null });
    expect(live.positions).toEqual([
      { partition: 0, offset: expect.any(String) as unknown, updatedAt: expect.any(String) as unknown },
    ]);
    const snapshot = await table();
    expect(new Set(snapshot.map((r) => `${r.account_id} ${r.period}`)).size).toBe(4);

    const reply = await call('POST', '/v1/projections/quota/rebuild');
    expect(reply.status).toBe(202);
    expect(reply.body).toEqual({ name: 'quota', generation: 1, group: 'projection-quota-g1' });
    const rebuilt = await status('quota');
    expect(rebuilt.generation).toBe(1);
    expect(Date.parse(rebuilt.rebuiltAt!)).not.toBeNaN();

    const after = await caughtUp(lastQueued, 1);
    expect(after.group).toBe('projection-quota-g1');
    expect(runner.group).toBe('projection-quota-g1');
    expect(await table()).toEqual(snapshot);

    // And again: each rebuild is a generation of its own.
    expect((await call('POST', '/v1/projections/quota/rebuild')).body).toMatchObject({ generation: 2 });
    await caughtUp(lastQueued, 2);
    expect(await table()).toEqual(snapshot);
  });

  it('rebuilds the suppression lists and delivery reports too', async () => {
    for (const name of ['suppressions', 'delivery-report']) {
      const before = await status(name);
      const reply = await call('POST', `/v1/projections/${name}/rebuild`);
      expect(reply.status).toBe(202);
      expect(reply.body).toEqual({
        name,
        generation: before.generation + 1,
        group: `projection-${name}-g${before.generation + 1}`,
      });
      expect(await status(name)).toMatchObject({ name, generation: before.generation + 1, positions: [] });
    }
  });

  it('answers 404 for another name, 401 without a valid token', async () => {
    const before = await status('quota');
    for (const [method, path] of [
      ['GET', '/v1/projections/quotas'],
      ['POST', '/v1/projections/accounts/rebuild'],
    ] as const) {
      const reply = await call(method, path);
      expect(reply.status).toBe(404);
      expect(reply.body).toMatchObject({
        message: expect.stringMatching(
          /^No projection named \w+; one of: quota, suppressions, delivery-report$/,
        ) as unknown,
      });
    }
    for (const token of [null, 'wrong']) {
      expect((await call('GET', '/v1/projections/quota', { token })).status).toBe(401);
      expect((await call('POST', '/v1/projections/quota/rebuild', { token })).status).toBe(401);
    }
    // Refused before anything happened.
    expect((await status('quota')).generation).toBe(before.generation);
  });

  it('is documented behind the bearer token', async () => {
    const reply = await call<{
      paths: Record<string, Record<string, { security?: unknown[]; responses?: object }>>;
    }>('GET', '/docs-json', { token: null });
    const rebuild = reply.body.paths['/v1/projections/{name}/rebuild']?.post;
    const get = reply.body.paths['/v1/projections/{name}']?.get;
    for (const route of [rebuild, get]) expect(route?.security).toEqual([{ bearer: [] }]);
    expect(Object.keys(rebuild?.responses ?? {})).toEqual(expect.arrayContaining(['202', '401', '404']));
  });
});
