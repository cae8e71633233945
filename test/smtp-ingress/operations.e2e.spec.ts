import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { buffer } from 'node:stream/consumers';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@relay/config';
import type { EventLog } from '@relay/event-log';
import { countSpooledBodies, LocalDirectorySpool } from '@relay/spool';
import { authPlain, SmtpTestClient } from '@relay/testing';
import { eventsOf } from '../support/relay-client.js';
import { createSenderAccount, QUEUED, SENDER, sessionsClosedAfterEach } from '../support/smtp-sessions.js';
import { openLogReader, startTestRelay, type TestRelay } from '../support/test-relay.js';

/**
 * What operators rely on around the SMTP edge: /metrics, /health, the structured log lines, the
 * AUTH slow-down, a graceful stop, and the spool chosen by SPOOL. Every relay here is this file's
 * own (its own database and data directory), so no other file's mail shows up in its logs or spool;
 * the metrics are per process, which Vitest gives each file.
 */

const PASSWORD = SENDER.password;
const BODY_TEXT = 'Hello there.';

const message = (from = 'Sender <news@example.com>'): string =>
  `From: ${from}\r\nTo: rcpt@example.org\r\nSubject: hello\r\n\r\n${BODY_TEXT}\r\n.\r\n`;

const { connect } = sessionsClosedAfterEach();

/** An implicit-TLS session past EHLO and AUTH PLAIN as `sender`. */
async function authenticatedSession(t: TestRelay): Promise<SmtpTestClient> {
  const { client } = await connect(t.smtpsPort, { tls: true });
  await client.command('EHLO client.test');
  expect(await client.line(`AUTH PLAIN ${authPlain(SENDER.username, PASSWORD)}`)).toBe(
    '235 2.7.0 Authentication successful',
  );
  return client;
}

/** One mail transaction on an open session; returns the last line of the reply to the body. */
async function transaction(client: SmtpTestClient, body = message()): Promise<string> {
  expect(await client.line('MAIL FROM:<bounces@example.com>')).toBe('250 2.1.0 Accepted');
  expect(await client.line('RCPT TO:<rcpt@example.org>')).toBe('250 2.1.5 Accepted');
  expect(await client.line('DATA')).toMatch(/^354 /);
  client.write(body);
  const reply = await client.reply();
  return reply[reply.length - 1] ?? '';
}

/** The relay message id of a `250 2.0.0 Ok: queued as <id>` line; fails on any other line. */
function queuedId(reply: string): string {
  expect(reply).toMatch(QUEUED);
  return QUEUED.exec(reply)?.[1] ?? '';
}

/** An unauthenticated session from 127.0.0.1, which no account allow-lists, tries to relay. */
async function deniedRcpt(t: TestRelay): Promise<string> {
  const { client } = await connect(t.smtpPort);
  await client.command('EHLO client.test');
  expect(await client.line('MAIL FROM:<someone@elsewhere.test>')).toBe('250 2.1.0 Accepted');
  const reply = await client.line('RCPT TO:<victim@example.org>');
  client.close();
  return reply;
}

/** The MessageReceived event of one message, read from the relay's own log. */
async function receivedEvent(t: TestRelay, messageId: string) {
  const log: EventLog = await openLogReader(t.db, t.config);
  try {
    const [event] = await eventsOf(log, 'MessageReceived', messageId);
    if (!event) throw new Error(`no MessageReceived for ${messageId}`);
    return event;
  } finally {
    await log.close();
  }
}

/** Samples of a Prometheus text exposition, keyed by the series as written (`name{labels}`). */
type Samples = ReadonlyMap<string, number>;

function parseSamples(text: string): Samples {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^(\S+?(?:\{.*\})?) (\S+)$/.exec(line);
    if (!match?.[1] || !match[2]) throw new Error(`not a Prometheus sample line: ${line}`);
    samples.set(match[1], Number(match[2]));
  }
  return samples;
}

/**
 * The value of one series (`name{label="value"}`), or the sum over every label set of a metric
 * name; 0 when it has none yet (prom-client shows a labelled series only once it was counted).
 */
function total(samples: Samples, selector: string): number {
  let sum = 0;
  for (const [series, value] of samples) {
    if (series === selector || series.startsWith(`${selector}{`)) sum += value;
  }
  return sum;
}

/**
 * GET /metrics. prom-client keeps one registry per process, which every relay this file starts
 * counts into: tests compare a scrape before with one after.
 */
async function scrapeMetrics(t: TestRelay): Promise<{ response: Response; text: string; samples: Samples }> {
  // No Authorization header: the product serves /metrics, like /health, without the admin token.
  const response = await fetch(`${t.adminUrl}/metrics`);
  const text = await response.text();
  return { response, text, samples: parseSamples(text) };
}

describe('the default relay', () => {
  let t: TestRelay;
  let admin: pg.Client;
  beforeAll(async () => {
    // The ingress and the admin API: a worker would try to deliver to example.org (DNS) meanwhile.
    t = await startTestRelay({ RELAY_ROLES: 'smtp-ingress,admin-api' });
    await createSenderAccount(t);
    admin = new pg.Client({ connectionString: t.db.url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await t?.stop();
  });

  describe('GET /metrics', () => {
    it('counts sessions, an accepted message and its bytes, a refusal by reason and the append time, for a scraper without the admin token', async () => {
      const before = (await scrapeMetrics(t)).samples;

      const client = await authenticatedSession(t);
      const id = queuedId(await transaction(client));
      client.close();
      expect(await deniedRcpt(t)).toBe('550 5.7.1 Relaying denied for [127.0.0.1]');

      const { response, text, samples } = await scrapeMetrics(t);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(text).toContain('# TYPE relay_ingress_messages_accepted_total counter');
      expect(text).toContain('# TYPE relay_ingress_append_seconds histogram');
      const delta = (series: string): number => total(samples, series) - total(before, series);

      // One session on each kind of port, labelled with the port it came in on (not the 0 configured).
      expect(delta(`relay_ingress_sessions_total{port="${t.smtpsPort}"}`)).toBe(1);
      expect(delta(`relay_ingress_sessions_total{port="${t.smtpPort}"}`)).toBe(1);
      expect(delta('relay_ingress_auth_total{outcome="ok"}')).toBe(1);
      expect(delta('relay_ingress_messages_accepted_total')).toBe(1);
      expect(delta('relay_ingress_refused_total{reason="relay-denied"}')).toBe(1);
      // The octets as spooled, which MessageReceived reports as the size.
      expect(delta('relay_ingress_bytes_accepted_total')).toBe((await receivedEvent(t, id)).data.size);
      expect(delta('relay_ingress_append_seconds_count')).toBe(1);
      expect(delta('relay_ingress_append_seconds_bucket{le="+Inf"}')).toBe(1);
      expect(delta('relay_ingress_append_seconds_sum')).toBeGreaterThan(0);
      const buckets = [...samples.keys()]
        .filter((series) => series.startsWith('relay_ingress_append_seconds_bucket{'))
        .map((series) => /le="([^"]+)"/.exec(series)?.[1]);
      expect(buckets).toEqual([
        '0.001',
        '0.0025',
        '0.005',
        '0.01',
        '0.025',
        '0.05',
        '0.1',
        '0.25',
        '0.5',
        '1',
        '2.5',
        '+Inf',
      ]);
    });
  });

  describe('GET /health', () => {
    it('answers 200 when Postgres and the event log answer, without the admin token', async () => {
      const response = await fetch(`${t.adminUrl}/health`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ status: 'ok', checks: { postgres: true, eventLog: true } });
    });

    it('answers 503 naming the event log while the log cannot take events', async () => {
      const client = await authenticatedSession(t);
      await admin.query('ALTER TABLE event_log RENAME TO event_log_down');
      try {
        // The relay itself finds the log down: it takes no message...
        expect(await transaction(client)).toBe(
          '451 4.3.0 Temporary failure: message not accepted, try again later',
        );
        // ...so a load balancer must be told to send senders elsewhere.
        const response = await fetch(`${t.adminUrl}/health`);
        expect({ status: response.status, body: await response.json() }).toEqual({
          status: 503,
          body: { status: 'unavailable', checks: { postgres: true, eventLog: false } },
        });
      } finally {
        await admin.query('ALTER TABLE event_log_down RENAME TO event_log');
      }
      expect((await fetch(`${t.adminUrl}/health`)).status).toBe(200);
    });
  });

  describe('spool', () => {
    it('keeps bodies in the local directory under the data dir when SPOOL is unset', async () => {
      const root = join(t.dataDir, 'spool');
      const before = await countSpooledBodies(root);
      const client = await authenticatedSession(t);
      const id = queuedId(await transaction(client));
      client.close();
      const { spoolKey } = (await receivedEvent(t, id)).data;
      expect(await countSpooledBodies(root)).toBe(before + 1);
      const stored = await buffer(await new LocalDirectorySpool(root).read(spoolKey));
      expect(stored.toString()).toContain(BODY_TEXT);
      const rows = await admin.query('SELECT 1 FROM spool_bodies WHERE key = $1', [spoolKey]);
      expect(rows.rowCount).toBe(0);
    });
  });
});

describe('SPOOL=postgres', () => {
  let t: TestRelay;
  // The worker would start delivering to example.org; only where the ingress puts the body matters here.
  beforeAll(async () => {
    t = await startTestRelay({ SPOOL: 'postgres', RELAY_ROLES: 'smtp-ingress,admin-api' });
    await createSenderAccount(t);
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('keeps the body in Postgres chunks and nothing under the data dir', async () => {
    const client = await authenticatedSession(t);
    const id = queuedId(await transaction(client));
    client.close();
    const { spoolKey, size } = (await receivedEvent(t, id)).data;
    const db = new pg.Client({ connectionString: t.db.url });
    await db.connect();
    try {
      const body = await db.query<{ size: string }>(
        'SELECT size::text AS size FROM spool_bodies WHERE key = $1',
        [spoolKey],
      );
      expect(body.rows).toEqual([{ size: String(size) }]);
      const chunks = await db.query<{ data: Buffer }>(
        'SELECT data FROM spool_chunks WHERE key = $1 ORDER BY seq',
        [spoolKey],
      );
      const stored = Buffer.concat(chunks.rows.map((row) => row.data));
      expect(stored.length).toBe(size);
      expect(stored.toString()).toContain(BODY_TEXT);
    } finally {
      await db.end();
    }
    expect(await countSpooledBodies(join(t.dataDir, 'spool'))).toBe(0);
  });
});

describe('structured logs', () => {
  const lines: string[] = [];
  let t: TestRelay;
  let accountId: string;
  /** Every line captured so far, parsed: each must be one JSON object. */
  const entries = (): Record<string, unknown>[] =>
    lines.map((line) => JSON.parse(line) as Record<string, unknown>);

  // The ingress and the admin API only: the worker would log its own lines for the same message id.
  beforeAll(async () => {
    t = await startTestRelay(
      { RELAY_ROLES: 'smtp-ingress,admin-api' },
      { logger: createLogger('info', {}, (line) => lines.push(line)) },
    );
    accountId = await createSenderAccount(t);
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('writes one line per accepted transaction, with the queued message id and the account', async () => {
    const client = await authenticatedSession(t);
    const ids = [queuedId(await transaction(client)), queuedId(await transaction(client))];
    client.close();
    for (const id of ids) {
      const { size } = (await receivedEvent(t, id)).data;
      expect(entries().filter((entry) => entry.messageId === id)).toEqual([
        expect.objectContaining({
          level: 'info',
          msg: 'accepted',
          messageId: id,
          accountId,
          clientIp: '127.0.0.1',
          auth: 'smtp-auth',
          recipients: 1,
          size,
        }),
      ]);
    }
    expect(lines.every((line) => !line.includes('\n'))).toBe(true);
  });

  it('writes a line for a refused transaction with the account and the reason', async () => {
    const client = await authenticatedSession(t);
    expect(await transaction(client, message('"Spoof" <ceo@other.test>'))).toBe(
      '550 5.7.1 Relaying denied for [127.0.0.1] / "Spoof"',
    );
    client.close();
    const refused = entries().filter((entry) => entry.msg === 'refused: From not allowed for the account');
    // The 550 names no message id; the line carries the one the refused transaction was given.
    expect(refused.map((entry) => entry.messageId)).toEqual([
      expect.stringMatching(/^[0-9a-z]{9}[0-9a-f]{16}$/),
    ]);
    expect(refused).toEqual([
      expect.objectContaining({
        level: 'info',
        accountId,
        clientIp: '127.0.0.1',
        from: 'ceo@other.test',
        reason: 'not-in-allowed-from',
      }),
    ]);
  });

  it('writes one line per session refused at RCPT TO, however many recipients it tries', async () => {
    const { client } = await connect(t.smtpPort);
    await client.command('EHLO client.test');
    await client.line('MAIL FROM:<someone@elsewhere.test>');
    for (const recipient of ['first@example.org', 'second@example.org']) {
      expect(await client.line(`RCPT TO:<${recipient}>`)).toBe('550 5.7.1 Relaying denied for [127.0.0.1]');
    }
    client.close();
    expect(entries().filter((entry) => entry.msg === 'refused: relaying denied')).toEqual([
      expect.objectContaining({
        level: 'info',
        clientIp: '127.0.0.1',
        recipient: 'first@example.org',
        reason: 'relay-denied',
      }),
    ]);
  });

  it('logs a failed AUTH with the client IP and username, and no password anywhere', async () => {
    const wrong = 'Tr0ub4dor&3-not-it';
    const { client } = await connect(t.smtpsPort, { tls: true });
    await client.command('EHLO client.test');
    expect(await client.line(`AUTH PLAIN ${authPlain(SENDER.username, wrong)}`)).toBe(
      '535 5.7.8 Authentication credentials invalid',
    );
    expect(await client.line(`AUTH PLAIN ${authPlain(SENDER.username, PASSWORD)}`)).toBe(
      '235 2.7.0 Authentication successful',
    );
    client.close();
    const auth = entries().filter((entry) => entry.msg === 'auth failed');
    expect(auth).toEqual([
      expect.objectContaining({
        level: 'info',
        clientIp: '127.0.0.1',
        username: SENDER.username,
        method: 'PLAIN',
      }),
    ]);
    // Neither password, as sent on the wire (base64) or decoded, in any line this relay has logged:
    // the account's creation, the successful AUTHs of the earlier tests and this one included.
    for (const secret of [
      wrong,
      PASSWORD,
      authPlain(SENDER.username, wrong),
      authPlain(SENDER.username, PASSWORD),
    ]) {
      expect(lines.filter((line) => line.includes(secret))).toEqual([]);
    }
  });
});

describe('AUTH slow-down', () => {
  let t: TestRelay;
  beforeAll(async () => {
    // The smallest limit that slows an attempt down: SMTP_AUTH_MAX_FAILURES=2.
    t = await startTestRelay({ SMTP_AUTH_MAX_FAILURES: '2', RELAY_ROLES: 'smtp-ingress' });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('answers the k-th failed AUTH of an IP no sooner than the throttle delay for k', async () => {
    // auth-throttle.ts with refuseAfter 2: slowAfter is 1, so the 1st attempt waits 0 ms and the
    // 2nd waits (1 - 1 + 1) x 500 ms before checking the password; its failure then locks the IP.
    const delays = [0, 500];
    // Node may fire a timer up to a few ms before its delay by performance.now() (libuv schedules
    // from its cached loop time). Checking the password alone (one scrypt) takes far less than 500 ms.
    const timerSlackMs = 20;
    const { client } = await connect(t.smtpsPort, { tls: true });
    await client.command('EHLO client.test');
    for (const [k, delay] of delays.entries()) {
      const started = performance.now();
      expect(await client.line(`AUTH PLAIN ${authPlain('guess', `pw${k}`)}`)).toBe(
        '535 5.7.8 Authentication credentials invalid',
      );
      // A lower bound only, which the server's sleep guarantees; how much longer a busy machine
      // takes says nothing about the relay, so there is no upper bound.
      expect(performance.now() - started).toBeGreaterThanOrEqual(delay - timerSlackMs);
    }
    expect(await client.line(`AUTH PLAIN ${authPlain('guess', 'pw2')}`)).toBe(
      '421 4.7.0 Too many failed authentication attempts; try again later',
    );
  });
});

describe('graceful stop', () => {
  let t: TestRelay;
  beforeAll(async () => {
    t = await startTestRelay({ RELAY_ROLES: 'smtp-ingress,admin-api' });
    await createSenderAccount(t);
  });
  afterAll(async () => {
    // The test stopped the relay already (its stop is idempotent): this removes its database and data dir.
    await t?.stop();
  });

  /** Connects until the relay no longer greets new sessions with 220; returns what it did instead. */
  async function firstRefusal(port: number): Promise<string> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        const { client, greeting } = await SmtpTestClient.connect(port);
        client.close();
        const first = greeting[0] ?? '';
        if (!first.startsWith('220 ')) return first;
      } catch (error) {
        return (error as NodeJS.ErrnoException).code ?? String(error);
      }
      if (Date.now() > deadline) throw new Error('the relay still greets new sessions while stopping');
      await sleep(20);
    }
  }

  it('refuses new connections while a session in progress still gets its 250', async () => {
    const port = t.smtpPort;
    const client = await authenticatedSession(t);
    expect(await client.line('MAIL FROM:<bounces@example.com>')).toBe('250 2.1.0 Accepted');
    expect(await client.line('RCPT TO:<rcpt@example.org>')).toBe('250 2.1.5 Accepted');
    expect(await client.line('DATA')).toMatch(/^354 /);

    let stopped = false;
    const stopping = t.relay.stop().then(() => {
      stopped = true;
    });
    try {
      expect(await firstRefusal(port)).toMatch(/^(ECONNREFUSED|ECONNRESET|421 )/);
      // The stop waits for the session: the refusal came while it was in progress.
      expect(stopped).toBe(false);
      client.write(message());
      expect((await client.reply()).pop()).toMatch(QUEUED);
    } finally {
      client.close();
      await stopping;
    }
  });
});
