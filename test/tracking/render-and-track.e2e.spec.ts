import { createServer } from 'node:net';
import { dkimVerify } from 'mailauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventLog } from '@relay/event-log';
import { CaptureMx } from '@relay/testing';
import { eventsOf, submitRaw, waitFor } from '../support/relay-client.js';
import { openLogReader, startTestRelay, type TestRelay } from '../support/test-relay.js';

const auth = { user: 'shop', pass: 'correct horse battery staple' };

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** The HTML and plain parts of a tracked newsletter, with a link and the unsubscribe placeholder. */
const newsletter = (to: string): string =>
  [
    'From: Shop <news@example.com>',
    `To: ${to}`,
    'Subject: Our new products',
    'MIME-Version: 1.0',
    'Content-Type: multipart/alternative; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 7bit',
    '',
    'See https://shop.example/product?id=42 today.',
    'Unsubscribe: https://shop.example/u.z?***uniqueid***',
    '--b1',
    'Content-Type: text/html; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    '<html><body><p>See <a href=3D"https://shop.example/product?id=3D42">our product</a>.</p>',
    '<p><a href=3D"https://shop.example/u.z?***uniqueid***">Unsubscribe</a></p></body></html>',
    '--b1--',
    '',
  ].join('\r\n');

describe('rendering, DKIM and the tracker, end to end', () => {
  let mx: CaptureMx;
  let t: TestRelay;
  let log: EventLog;
  let dnsRecords: { name: string; value: string }[];
  let trackerUrl: string;

  beforeAll(async () => {
    mx = await new CaptureMx().start();
    const trackerPort = await freePort();
    trackerUrl = `http://127.0.0.1:${trackerPort}`;
    t = await startTestRelay({
      DELIVERY_SMART_HOST: `127.0.0.1:${mx.port}`,
      TRACKER_PORT: String(trackerPort),
      TRACKING_BASE_URL: trackerUrl,
    });
    log = await openLogReader(t.db);
    const created = await t.admin('POST', '/v1/accounts', {
      name: 'Shop',
      username: auth.user,
      password: auth.pass,
      allowedFrom: ['@example.com'],
      tracking: { opens: true, clicks: true },
      dkim: { domain: 'example.com', selector: 'relay1' },
    });
    expect(created.status).toBe(201);
    const dkim = created.body.dkim as { dnsRecords: { name: string; value: string }[] };
    dnsRecords = dkim.dnsRecords;
  });

  afterAll(async () => {
    await log?.close();
    await t?.stop();
    await mx?.stop();
  });

  it('delivers a signed, tracked copy per recipient; the click redirects; a forged token is refused; one-click unsubscribes', async () => {
    const id = await submitRaw(
      t.smtpPort,
      auth,
      { from: 'bounces@example.com', to: ['ann@dest.test'] },
      newsletter('ann@dest.test'),
    );
    await waitFor('Delivered', async () => (await eventsOf(log, 'Delivered', id))[0]);
    const copy = mx.deliveredTo('ann@dest.test').at(-1)?.raw ?? Buffer.alloc(0);
    const text = copy.toString();

    // DKIM verifies against the TXT record the admin API returned.
    const verification = await dkimVerify(copy, {
      resolver: async (name: string) => {
        const record = dnsRecords.find((r) => r.name === name);
        if (!record) throw Object.assign(new Error(`no TXT for ${name}`), { code: 'ENOTFOUND' });
        return [[record.value]];
      },
    });
    expect(verification.results.map((r) => r.status.result)).toEqual(['pass']);

    // The link is tracked, the placeholder carries the recipient's token, the header is there.
    expect(text).not.toContain('***uniqueid***');
    expect(text).toMatch(/^List-Unsubscribe: <http:\/\/127\.0\.0\.1:\d+\/u\.z\?[\w.-]+>/m);
    const clickUrl = /(http:\/\/127\.0\.0\.1:\d+\/c\.z\?[\w.-]+)/.exec(text.replace(/=\r\n/g, ''))?.[1];
    expect(clickUrl).toBeDefined();
    const click = await fetch(clickUrl ?? '', {
      redirect: 'manual',
      headers: { 'user-agent': 'Mozilla/5.0 test' },
    });
    expect(click.status).toBe(302);
    expect(click.headers.get('location')).toBe('https://shop.example/product?id=42');
    const clicked = await waitFor('Clicked', async () => (await eventsOf(log, 'Clicked', id))[0]);
    expect(clicked.data).toMatchObject({
      recipient: 'ann@dest.test',
      url: 'https://shop.example/product?id=42',
    });

    const forged = clickUrl?.replace(/\.[\w-]+$/, '.AAAAAAAAAAAAAAAAAAAAAA') ?? '';
    const refused = await fetch(forged, { redirect: 'manual' });
    expect(refused.status).toBe(400);
    expect(refused.headers.get('location')).toBeNull();

    // RFC 8058 one-click from the List-Unsubscribe header.
    const unsubscribeUrl = /^List-Unsubscribe: <([^>]+)>/m.exec(text)?.[1] ?? '';
    const page = await fetch(unsubscribeUrl);
    expect(page.status).toBe(200);
    expect(await eventsOf(log, 'Unsubscribed', id)).toHaveLength(0);
    const oneClick = await fetch(unsubscribeUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(oneClick.status).toBe(200);
    await waitFor('Unsubscribed', async () => (await eventsOf(log, 'Unsubscribed', id))[0]);

    // The address is on the Unsubscribe list now: the next message to it is not sent.
    await waitFor('the listing', async () => {
      const second = await submitRaw(
        t.smtpPort,
        auth,
        { from: 'bounces@example.com', to: ['ann@dest.test'] },
        newsletter('ann@dest.test'),
      );
      const suppressed = await waitFor('a decision', async () => {
        const [s] = await eventsOf(log, 'Suppressed', second);
        const [q] = await eventsOf(log, 'MessageQueued', second);
        return s ?? q;
      });
      return suppressed.type === 'Suppressed' ? suppressed : undefined;
    });
  });
});
