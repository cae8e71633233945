import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DynamicModule, type INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Server } from 'node:http';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  createLogger,
  ensureSecret,
  LOGGER,
  loadConfig,
  RELAY_CONFIG,
  type RelayConfig,
  TRACKING_SECRET_FILE,
  trackingKey,
} from '@relay/config';
import { type RelayEvent, signTrackingToken, type TrackingClaims } from '@relay/domain';
import { EVENT_LOG, type EventLog, PostgresEventLog } from '@relay/event-log';
import { createDataSource } from '@relay/persistence';
import { createTestDatabase, type TestDatabase } from '@relay/testing';
import { TrackerModule } from './tracker.module.js';

const BROWSER =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36';
const GIF_1X1 = Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64');
const silent = createLogger('error', {}, () => undefined);

/** What apps/relay's RuntimeModule provides globally, built from test parts. */
@Module({})
class TestRuntimeModule {
  static forRoot(deps: {
    config: RelayConfig;
    dataSource: DataSource;
    eventLog: EventLog;
    logLines: string[];
  }): DynamicModule {
    return {
      module: TestRuntimeModule,
      global: true,
      providers: [
        { provide: RELAY_CONFIG, useValue: deps.config },
        { provide: LOGGER, useValue: createLogger('debug', {}, (line) => deps.logLines.push(line)) },
        { provide: EVENT_LOG, useValue: deps.eventLog },
        { provide: DataSource, useValue: deps.dataSource },
      ],
      exports: [RELAY_CONFIG, LOGGER, EVENT_LOG, DataSource],
    };
  }
}

async function startTracker(deps: Parameters<typeof TestRuntimeModule.forRoot>[0]): Promise<{
  app: INestApplication;
  baseUrl: string;
}> {
  const app = await NestFactory.create(
    { module: TrackerModule, imports: [TestRuntimeModule.forRoot(deps)] },
    { logger: false },
  );
  await app.listen(0, '127.0.0.1');
  const { port } = (app.getHttpServer() as Server).address() as AddressInfo;
  return { app, baseUrl: `http://127.0.0.1:${port}` };
}

let db: TestDatabase;
let dataSource: DataSource;
let dataDir: string;
let config: RelayConfig;
let eventLog: PostgresEventLog;
let app: INestApplication;
let baseUrl: string;
let key: string;
const logLines: string[] = [];
/** The secret file as it was when the tracker had started (before any test read it again). */
let secretAtStart: { mode: number; ino: number; mtimeMs: number; content: string } | undefined;
let secretBeforeStart: 'absent' | 'present';

beforeAll(async () => {
  db = await createTestDatabase('tracker');
  dataDir = await mkdtemp(join(tmpdir(), 'relay-tracker-'));
  config = loadConfig({ RELAY_DATA_DIR: dataDir });
  const secretFile = join(dataDir, TRACKING_SECRET_FILE);
  secretBeforeStart = await stat(secretFile).then(
    () => 'present' as const,
    () => 'absent' as const,
  );
  dataSource = await createDataSource({ url: db.url, poolSize: 4 }).initialize();
  eventLog = await PostgresEventLog.connect({ url: db.url, logger: silent });
  ({ app, baseUrl } = await startTracker({ config, dataSource, eventLog, logLines }));
  const stats = await stat(secretFile);
  secretAtStart = {
    mode: stats.mode & 0o777,
    ino: stats.ino,
    mtimeMs: stats.mtimeMs,
    content: await readFile(secretFile, 'utf8'),
  };
  key = await trackingKey(config);
});

afterAll(async () => {
  await app?.close();
  await eventLog?.close();
  await dataSource?.destroy();
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

let messages = 0;
/** Claims of a message of its own, so that each test reads only its own events. */
function claimsOf<K extends TrackingClaims['kind']>(
  kind: K,
  extra: K extends 'c' ? { url: string } : object = {} as never,
): Extract<TrackingClaims, { kind: K }> {
  return {
    kind,
    accountId: `acct-${randomUUID()}`,
    messageId: `msg-${++messages}-${randomUUID()}`,
    recipient: 'ann.reader@example.org',
    ...extra,
  } as Extract<TrackingClaims, { kind: K }>;
}

const sign = (claims: TrackingClaims, signingKey: string = key): string =>
  signTrackingToken(claims, signingKey);

async function eventsOf(messageId: string): Promise<RelayEvent[]> {
  const rows: { payload: RelayEvent }[] = await dataSource.query(
    `SELECT payload FROM event_log WHERE message_id = $1 ORDER BY position`,
    [messageId],
  );
  return rows.map((r) => r.payload);
}

function hit(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${baseUrl}${path}`, {
    redirect: 'manual',
    ...init,
    headers: { 'user-agent': BROWSER, ...(init.headers as Record<string, string> | undefined) },
  });
}

/** Marks the recipient delivered at `at` in the delivery report, as DeliveryReportProjector writes it. */
async function deliveredAt(claims: TrackingClaims, at: Date): Promise<void> {
  const iso = at.toISOString();
  await dataSource.query(
    `INSERT INTO message_reports (message_id, account_id, status, recipients_count, received_at, updated_at)
     VALUES ($1, $2, 'delivered', 1, $3, $3)`,
    [claims.messageId, claims.accountId, iso],
  );
  await dataSource.query(
    `INSERT INTO recipient_reports (message_id, recipient, status, attempts, updated_at, timeline)
     VALUES ($1, $2, 'delivered', 1, $3, $4)`,
    [
      claims.messageId,
      claims.recipient.toUpperCase(),
      iso,
      JSON.stringify([
        { at: iso, type: 'MessageQueued', eventId: randomUUID() },
        { at: iso, type: 'Delivered', eventId: randomUUID(), reply: '250 ok', attempt: 1 },
      ]),
    ],
  );
}

async function expectRefused(response: Response, messageId: string): Promise<void> {
  expect(response.status).toBe(400);
  expect(response.headers.get('location')).toBeNull();
  expect(response.headers.get('content-type')).toBe('text/plain; charset=utf-8');
  expect((await response.text()).length).toBeLessThan(80);
  expect(await eventsOf(messageId)).toEqual([]);
}

describe('GET /o.z (open pixel)', () => {
  it('answers a 43-byte transparent GIF, uncached, and appends Opened', async () => {
    const claims = claimsOf('o');
    const before = Date.now();
    const response = await hit(`/o.z?${sign(claims)}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/gif');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = Buffer.from(await response.arrayBuffer());
    expect(body.length).toBe(43);
    expect(body).toEqual(GIF_1X1);

    const events = await eventsOf(claims.messageId);
    expect(events).toHaveLength(1);
    const [opened] = events;
    expect(opened).toMatchObject({
      type: 'Opened',
      version: 1,
      accountId: claims.accountId,
      messageId: claims.messageId,
      data: { recipient: claims.recipient, ip: '127.0.0.1', userAgent: BROWSER, suspectedScanner: false },
    });
    expect(opened?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(opened?.occurredAt ?? '')).toBeGreaterThanOrEqual(before - 5);
    const line = logLines.find((l) => l.includes(claims.messageId));
    expect(JSON.parse(line ?? '{}')).toMatchObject({
      msg: 'tracking event recorded',
      component: 'tracker',
      type: 'Opened',
      accountId: claims.accountId,
      suspectedScanner: false,
    });
  });

  it('answers HEAD with the same headers and no body, and flags the Opened as a scanner', async () => {
    const claims = claimsOf('o');
    const response = await hit(`/o.z?${sign(claims)}`, { method: 'HEAD' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/gif');
    expect(response.headers.get('content-length')).toBe('43');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect((await response.arrayBuffer()).byteLength).toBe(0);
    const [opened] = await eventsOf(claims.messageId);
    expect(opened).toMatchObject({ type: 'Opened', data: { suspectedScanner: true } });
    expect(logLines.find((l) => l.includes(claims.messageId))).toContain('"scannerReason":"head-request"');
  });

  it('takes the account from the token, not from the Host header', async () => {
    const claims = claimsOf('o');
    const { port } = new URL(baseUrl);
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path: `/o.z?${sign(claims)}`,
          headers: { host: 'links.another-account.example', 'user-agent': BROWSER },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    expect((await eventsOf(claims.messageId))[0]?.accountId).toBe(claims.accountId);
  });
});

describe('GET /c.z (click redirect)', () => {
  const url = 'https://shop.example.com/offer?id=42&lang=fr&q=é';

  it('redirects to the original URL with 302 and appends Clicked', async () => {
    const claims = claimsOf('c', { url });
    const response = await hit(`/c.z?${sign(claims)}`);
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('https://shop.example.com/offer?id=42&lang=fr&q=%C3%A9');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(await response.text()).toBe('');
    const events = await eventsOf(claims.messageId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'Clicked',
      accountId: claims.accountId,
      messageId: claims.messageId,
      data: {
        recipient: claims.recipient,
        url,
        ip: '127.0.0.1',
        userAgent: BROWSER,
        suspectedScanner: false,
      },
    });
  });

  it('answers HEAD with the 302 and no body, and flags the Clicked as a scanner', async () => {
    const claims = claimsOf('c', { url });
    const response = await hit(`/c.z?${sign(claims)}`, { method: 'HEAD' });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('https://shop.example.com/offer?id=42&lang=fr&q=%C3%A9');
    expect((await response.arrayBuffer()).byteLength).toBe(0);
    expect((await eventsOf(claims.messageId))[0]).toMatchObject({
      type: 'Clicked',
      data: { suspectedScanner: true },
    });
  });

  it('flags a click within a second of the delivery, not one a minute after', async () => {
    const early = claimsOf('c', { url });
    await deliveredAt(early, new Date());
    expect((await hit(`/c.z?${sign(early)}`)).status).toBe(302);
    expect((await eventsOf(early.messageId))[0]).toMatchObject({ data: { suspectedScanner: true } });
    expect(logLines.find((l) => l.includes(early.messageId))).toContain(
      '"scannerReason":"right-after-delivery"',
    );

    const late = claimsOf('c', { url });
    await deliveredAt(late, new Date(Date.now() - 60_000));
    expect((await hit(`/c.z?${sign(late)}`)).status).toBe(302);
    expect((await eventsOf(late.messageId))[0]).toMatchObject({ data: { suspectedScanner: false } });
  });

  it('flags a well-known scanner user agent, and still records the click', async () => {
    const claims = claimsOf('c', { url });
    const response = await hit(`/c.z?${sign(claims)}`, {
      headers: { 'user-agent': 'Mozilla/5.0 (compatible; Barracuda Sentinel)' },
    });
    expect(response.status).toBe(302);
    expect((await eventsOf(claims.messageId))[0]).toMatchObject({ data: { suspectedScanner: true } });
  });

  it('refuses a forged token (another key) with 400: no redirect, no event', async () => {
    const claims = claimsOf('c', { url: 'https://evil.example/phish' });
    await expectRefused(await hit(`/c.z?${sign(claims, 'not the relay key at all')}`), claims.messageId);
  });

  it('refuses a token whose URL was altered with 400: no open redirect', async () => {
    const claims = claimsOf('c', { url });
    const [payload, tag] = sign(claims).split('.') as [string, string];
    const altered = Buffer.from(
      Buffer.from(payload, 'base64url').toString('utf8').replace('shop.example.com', 'evil.example'),
    ).toString('base64url');
    expect(altered).not.toBe(payload);
    await expectRefused(await hit(`/c.z?${altered}.${tag}`), claims.messageId);
  });

  it('refuses a genuine token whose target is no http(s) URL', async () => {
    const claims = claimsOf('c', { url: 'javascript:alert(document.cookie)' });
    const response = await hit(`/c.z?${sign(claims)}`);
    await expectRefused(response, claims.messageId);
  });

  it('refuses a missing token, garbage, and a genuine token of another kind', async () => {
    const open = claimsOf('o');
    for (const path of [
      '/c.z',
      '/c.z?',
      '/c.z?garbage',
      '/o.z?a.b',
      `/c.z?${sign(open)}`,
      `/u.z?${sign(open)}`,
    ]) {
      const response = await hit(path);
      expect(response.status, path).toBe(400);
      expect(response.headers.get('location'), path).toBeNull();
    }
    expect(await eventsOf(open.messageId)).toEqual([]);
  });
});

describe('/u.z (unsubscribe)', () => {
  it('GET shows a confirmation page with a button that posts the token back, and records nothing', async () => {
    const claims = { ...claimsOf('u'), recipient: 'o\'brien+<b>"x"</b>@example.org' };
    const token = sign(claims);
    const response = await hit(`/u.z?${token}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const html = await response.text();
    expect(html).toContain(`<form method="post" action="?${token}">`);
    expect(html).toContain('o&#39;brien+&lt;b&gt;&quot;x&quot;&lt;/b&gt;@example.org');
    expect(html).not.toContain('<b>');
    expect(html).not.toMatch(/<script/i);
    expect((await hit(`/u.z?${token}`, { method: 'HEAD' })).status).toBe(200);
    expect(await eventsOf(claims.messageId)).toEqual([]);
  });

  it('POST one-click (RFC 8058, urlencoded) appends Unsubscribed (one-click) and confirms', async () => {
    const claims = claimsOf('u');
    const response = await hit(`/u.z?${sign(claims)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('You are unsubscribed');
    const events = await eventsOf(claims.messageId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'Unsubscribed',
      accountId: claims.accountId,
      messageId: claims.messageId,
      data: { recipient: claims.recipient, method: 'one-click', ip: '127.0.0.1', userAgent: BROWSER },
    });
  });

  it('POST one-click as multipart/form-data is one-click too', async () => {
    const claims = claimsOf('u');
    const form = new FormData();
    form.set('List-Unsubscribe', 'One-Click');
    const response = await hit(`/u.z?${sign(claims)}`, { method: 'POST', body: form });
    expect(response.status).toBe(200);
    expect((await eventsOf(claims.messageId))[0]).toMatchObject({
      type: 'Unsubscribed',
      data: { method: 'one-click' },
    });
  });

  it("the page's button unsubscribes with method page", async () => {
    const claims = claimsOf('u');
    const pageUrl = `${baseUrl}/u.z?${sign(claims)}`;
    const html = await (await hit(`/u.z?${sign(claims)}`)).text();
    const action = /<form method="post" action="([^"]+)">/.exec(html)?.[1] ?? '';
    // What a browser submits for a form without fields.
    const response = await fetch(new URL(action.replaceAll('&amp;', '&'), pageUrl), {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': BROWSER },
      body: '',
    });
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('You are unsubscribed');
    expect((await eventsOf(claims.messageId))[0]).toMatchObject({
      type: 'Unsubscribed',
      data: { method: 'page' },
    });
  });

  it('POST with a forged token is refused: 400, no event', async () => {
    const claims = claimsOf('u');
    const response = await hit(`/u.z?${sign(claims, 'another key entirely!')}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    await expectRefused(response, claims.messageId);
  });
});

describe('when the event log cannot take the event', () => {
  it('still serves pixel and redirect, but never confirms an unsubscription it could not record', async () => {
    const closedLog = await PostgresEventLog.connect({ url: db.url, logger: silent });
    await closedLog.close();
    const lines: string[] = [];
    const broken = await startTracker({ config, dataSource, eventLog: closedLog, logLines: lines });
    try {
      const open = claimsOf('o');
      const pixel = await fetch(`${broken.baseUrl}/o.z?${sign(open)}`, {
        headers: { 'user-agent': BROWSER },
      });
      expect(pixel.status).toBe(200);
      expect(lines.join('\n')).toContain('tracking event NOT recorded');

      const unsubscribe = claimsOf('u');
      const response = await fetch(`${broken.baseUrl}/u.z?${sign(unsubscribe)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'List-Unsubscribe=One-Click',
      });
      expect(response.status).toBe(503);
      expect(await response.text()).not.toContain('unsubscribed');
      expect(await eventsOf(unsubscribe.messageId)).toEqual([]);
    } finally {
      await broken.app.close();
    }
  });
});

describe('the tracking secret', () => {
  it('is generated at first start under the data dir, mode 0600, and reused after', async () => {
    expect(secretBeforeStart).toBe('absent');
    expect(secretAtStart?.mode).toBe(0o600);
    expect(secretAtStart?.content.trim()).toBe(key);
    expect(key.length).toBeGreaterThanOrEqual(43);

    // Loaded again (the delivery stage that signs, a restart): the same key, the file untouched.
    expect(await trackingKey(config)).toBe(key);
    const after = await stat(join(dataDir, TRACKING_SECRET_FILE));
    expect(after.ino).toBe(secretAtStart?.ino);
    expect(after.mtimeMs).toBe(secretAtStart?.mtimeMs);

    // A second tracker on the same data dir verifies the tokens signed with it.
    const second = await startTracker({ config, dataSource, eventLog, logLines: [] });
    try {
      const claims = claimsOf('o');
      expect((await fetch(`${second.baseUrl}/o.z?${sign(claims)}`)).status).toBe(200);
    } finally {
      await second.app.close();
    }
  });

  it('comes out the same for processes starting together on a fresh data dir', async () => {
    const fresh = await mkdtemp(join(tmpdir(), 'relay-tracker-secret-'));
    try {
      const secrets = await Promise.all(
        Array.from({ length: 8 }, () => ensureSecret(fresh, TRACKING_SECRET_FILE, undefined)),
      );
      expect(new Set(secrets.map((s) => s.value)).size).toBe(1);
      expect(secrets.filter((s) => s.source === 'generated')).toHaveLength(1);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  it('is TRACKING_SECRET when set (no file written), and refuses a short one', async () => {
    const fresh = await mkdtemp(join(tmpdir(), 'relay-tracker-secret-'));
    try {
      const configured = loadConfig({ RELAY_DATA_DIR: fresh, TRACKING_SECRET: 'a configured secret key' });
      expect(await trackingKey(configured)).toBe('a configured secret key');
      await expect(stat(join(fresh, TRACKING_SECRET_FILE))).rejects.toThrow();
      const short = loadConfig({ RELAY_DATA_DIR: fresh, TRACKING_SECRET: 'short' });
      await expect(trackingKey(short)).rejects.toThrow(ConfigError);
      await expect(trackingKey(short)).rejects.toThrow(
        'Invalid TRACKING_SECRET: expected at least 16 characters, got 5',
      );
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });
});
