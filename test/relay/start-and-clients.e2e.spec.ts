import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '@relay/config';
import type { MessageReceived } from '@relay/domain';
import { PostgresEventLog } from '@relay/event-log';
import { LocalDirectorySpool } from '@relay/spool';
import {
  authPlain,
  CaptureMx,
  createTestDatabase,
  SmtpTestClient,
  REFUSED_PORT,
  type TestDatabase,
} from '@relay/testing';
import { eventsOf, waitFor } from '../support/relay-client.js';
import { startRelayChild, type RelayChild } from '../support/relay-child-process.js';
import { localRelayEnv } from '../support/test-relay.js';

/**
 * The relay as a new user meets it: `npm start`'s process (node apps/relay/dist/main.js) on an
 * empty database, its printed demo password and admin token, the mail clients of README's
 * "Sending a first message", a crash right after 250, and Ctrl-C.
 */

const run = promisify(execFile);

let db: TestDatabase;
let dataDir: string;
let sink: CaptureMx;
let log: PostgresEventLog;
/** The relay process the next test talks to; every one started is killed in afterAll. */
let relay: RelayChild;
const started: RelayChild[] = [];
let first: RelayChild;

async function startRelay(env: Readonly<Record<string, string>> = {}): Promise<RelayChild> {
  const child = await startRelayChild({
    ...localRelayEnv(db.url, dataDir),
    RELAY_HOSTNAME: 'relay.test',
    // Outbound mail goes to a capture server in this process, never to the internet.
    DELIVERY_SMART_HOST: `127.0.0.1:${sink.port}`,
    ...env,
  });
  started.push(child);
  relay = child;
  return child;
}

/** The admin API of the running relay with a bearer token. */
async function admin(path: string, token: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${relay.adminUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

/** A session on the plain port that is past STARTTLS, EHLO and AUTH as `username`. */
async function authenticated(username: string, password: string): Promise<SmtpTestClient> {
  const { client } = await SmtpTestClient.connect(relay.smtpPort);
  await client.command('EHLO client.test');
  expect(await client.startTls()).toMatch(/^220 2\.0\.0 /);
  await client.command('EHLO client.test');
  const auth = await client.line(`AUTH PLAIN ${authPlain(username, password)}`);
  if (!auth.startsWith('235')) client.close();
  expect(auth).toBe('235 2.7.0 Authentication successful');
  return client;
}

/** Sends one message on an authenticated session; returns the last line of the reply to its data. */
async function send(client: SmtpTestClient, message: string | Buffer): Promise<string> {
  expect(await client.line('MAIL FROM:<you@example.com>')).toBe('250 2.1.0 Accepted');
  expect(await client.line('RCPT TO:<someone@example.org>')).toBe('250 2.1.5 Accepted');
  expect(await client.line('DATA')).toMatch(/^354 /);
  client.write(message);
  client.write('.\r\n');
  const reply = await client.reply(60_000);
  return reply[reply.length - 1] ?? '';
}

const received = (): Promise<MessageReceived[]> => eventsOf(log, 'MessageReceived');

/** The one MessageReceived that `submit` adds to the log. */
async function receivedBy(submit: () => Promise<void>): Promise<MessageReceived> {
  const before = new Set((await received()).map((event) => event.id));
  await submit();
  const added = await waitFor('a new MessageReceived', async () => {
    const fresh = (await received()).filter((event) => !before.has(event.id));
    return fresh.length > 0 ? fresh : undefined;
  });
  expect(added).toHaveLength(1);
  return added[0]!;
}

/** A message with Message-ID and Date, so the relay adds nothing but its Received line. */
function messageWith(marker: string, body: string): string {
  return (
    `From: You <you@example.com>\r\nTo: someone@example.org\r\nSubject: ${marker}\r\n` +
    `Message-ID: <${marker}@example.com>\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\n${body}`
  );
}

beforeAll(async () => {
  sink = await new CaptureMx().start();
  db = await createTestDatabase('start_and_clients');
  dataDir = await mkdtemp(join(tmpdir(), 'relay-start-'));
  log = await PostgresEventLog.connect({ url: db.url, logger: silentLogger });
  first = await startRelay();
});

afterAll(async () => {
  // Every step runs, whatever became of the ones before it.
  await Promise.allSettled(started.map((child) => child.kill()));
  await Promise.allSettled([log?.close(), sink?.stop()]);
  await Promise.allSettled([db?.drop(), rm(dataDir, { recursive: true, force: true })]);
});

describe('npm start', () => {
  it('prints a demo account and a generated admin token on an empty database, and both work', async () => {
    expect(first.demoAccount?.username).toBe('demo');
    expect(first.demoAccount?.password).toMatch(/^[A-Za-z0-9]{20}$/);
    const token = first.generatedAdminToken;
    expect(token?.file).toBe(join(dataDir, 'admin-token'));
    expect(token?.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await readFile(token!.file, 'utf8')).trim()).toBe(token?.token);

    const accounts = await admin('/v1/accounts', token!.token);
    expect(accounts.status).toBe(200);
    expect(accounts.body).toMatchObject({ items: [{ username: 'demo', allowedFrom: ['*'] }] });
    expect((await admin('/v1/accounts', 'not-the-token')).status).toBe(401);

    const client = await authenticated('demo', first.demoAccount!.password);
    client.close();
  });

  it('a second start on the same database prints neither again; the first ones still work', async () => {
    expect(await first.stop()).toEqual({ code: 0, signal: null });
    const second = await startRelay();
    expect(second.demoAccount).toBeUndefined();
    expect(second.generatedAdminToken).toBeUndefined();
    expect(second.startupLines.join('\n')).not.toMatch(/demo account|admin token/);

    const accounts = await admin('/v1/accounts', first.generatedAdminToken!.token);
    expect(accounts.status).toBe(200);
    expect(accounts.body).toMatchObject({ items: [{ username: 'demo' }] });
    expect((accounts.body as { items: unknown[] }).items).toHaveLength(1);
    const client = await authenticated('demo', first.demoAccount!.password);
    client.close();
  });
});

describe("README's mail clients with the printed demo password", () => {
  // README, "Sending a first message": the same commands, on this relay's ports.
  const MAIL_TXT = 'From: You <you@example.com>\r\nTo: someone@example.org\r\nSubject: hi\r\n\r\nHello\r\n';
  /** Clients get PATH only: no proxy settings of this process. */
  const clientEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  let workDir: string;
  let demoAccountId: string;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'relay-clients-'));
    await writeFile(join(workDir, 'mail.txt'), MAIL_TXT);
    const accounts = await admin('/v1/accounts', first.generatedAdminToken!.token);
    demoAccountId = (accounts.body as { items: { id: string }[] }).items[0]!.id;
  });

  afterAll(async () => {
    await rm(workDir, { recursive: true, force: true });
  });

  const password = (): string => first.demoAccount!.password;

  function expectReceived(event: MessageReceived, fields: Partial<MessageReceived['data']>): void {
    expect(event.accountId).toBe(demoAccountId);
    expect(event.messageId).toMatch(/^[0-9a-z]{9}[0-9a-f]{16}$/);
    expect(event.data).toMatchObject({
      mailFrom: 'you@example.com',
      recipients: ['someone@example.org'],
      from: 'you@example.com',
      auth: 'smtp-auth',
      username: 'demo',
      tls: true,
      clientIp: '127.0.0.1',
      ...fields,
    });
  }

  const swaks = execFileOk('swaks', ['--version']);

  it.skipIf(!swaks)('swaks with STARTTLS', async () => {
    const event = await receivedBy(async () => {
      await run(
        'swaks',
        [
          ...['--server', `127.0.0.1:${relay.smtpPort}`, '-tls'],
          ...['--auth-user', 'demo', '--auth-password', password()],
          ...['--from', 'you@example.com', '--to', 'someone@example.org'],
        ],
        { cwd: workDir, env: clientEnv, timeout: 30_000 },
      );
    });
    expectReceived(event, {});
    expect(event.data.subject).toMatch(/^test /);
  });

  /** README's curl command: `--url <url> <tls options> --user ... --upload-file mail.txt`. */
  const curl = (url: string, tlsOptions: readonly string[]): Promise<unknown> =>
    run(
      'curl',
      [
        ...['--url', url, ...tlsOptions, '--user', `demo:${password()}`],
        ...['--mail-from', 'you@example.com', '--mail-rcpt', 'someone@example.org'],
        ...['--upload-file', 'mail.txt'],
      ],
      { cwd: workDir, env: clientEnv, timeout: 30_000 },
    );

  it('curl with STARTTLS on the plain port', async () => {
    const event = await receivedBy(async () => {
      await curl(`smtp://127.0.0.1:${relay.smtpPort}`, ['--ssl-reqd', '-k']);
    });
    expectReceived(event, { fromName: 'You', subject: 'hi' });
  });

  it('curl with implicit TLS', async () => {
    const event = await receivedBy(async () => {
      await curl(`smtps://127.0.0.1:${relay.smtpsPort}`, ['-k']);
    });
    expectReceived(event, { fromName: 'You', subject: 'hi' });
  });

  it("Python's smtplib with STARTTLS", async () => {
    const script = [
      'import smtplib, ssl',
      'context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE',
      `with smtplib.SMTP("127.0.0.1", ${relay.smtpPort}) as smtp:`,
      '    smtp.starttls(context=context)',
      `    smtp.login("demo", ${JSON.stringify(password())})`,
      '    smtp.sendmail("you@example.com", ["someone@example.org"], "From: you@example.com\\r\\nSubject: hi\\r\\n\\r\\nHello\\r\\n")',
    ].join('\n');
    const event = await receivedBy(async () => {
      await run('python3', ['-c', script], { cwd: workDir, env: clientEnv, timeout: 30_000 });
    });
    expectReceived(event, { subject: 'hi' });
  });
});

describe('a crash right after 250', () => {
  it('loses nothing: the restarted relay has both events, and the spool the bytes as sent', async () => {
    const marker = `crash-${Date.now().toString(36)}`;
    // One body that gets a file of its own and one that goes into a segment file.
    const large = messageWith(`${marker}-large`, `${'large body line\r\n'.repeat(40_000)}`);
    const small = messageWith(`${marker}-small`, `Hello ${marker}\r\n`);
    const client = await authenticated('demo', first.demoAccount!.password);
    const replies: string[] = [];
    try {
      replies.push(await send(client, large));
      replies.push(await send(client, small));
      // At once, before this process runs anything else: the relay gets no chance to finish up.
      relay.process.kill('SIGKILL');
    } finally {
      client.close();
    }
    expect(await relay.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const ids = replies.map((reply) => /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(reply)?.[1]);
    expect(ids).toEqual([expect.any(String), expect.any(String)]);

    const restarted = await startRelay();
    expect(restarted.demoAccount).toBeUndefined();
    const spool = new LocalDirectorySpool(join(dataDir, 'spool'));
    for (const [i, sent] of [large, small].entries()) {
      const id = ids[i]!;
      const event = (await eventsOf(log, 'MessageReceived', id))[0];
      expect(event?.data.subject).toBe(`${marker}-${i === 0 ? 'large' : 'small'}`);
      const bytes = await buffer(await spool.read(event!.data.spoolKey));
      expect(bytes.length).toBe(event!.data.size);
      const stored = bytes.toString('utf8');
      const trace = stored.slice(0, stored.length - sent.length);
      expect(trace).toMatch(
        new RegExp(
          `^Received: from client\\.test \\(\\[127\\.0\\.0\\.1\\]\\)\\r\\n\\tby relay\\.test with ESMTPSA id ${id};\\r\\n\\t[^\\r\\n]+ \\+0000\\r\\n$`,
        ),
      );
      expect(stored.slice(trace.length)).toBe(sent);
    }
  });
});

describe('Ctrl-C', () => {
  // Two graceful stops and a delivery attempt: more than the default 60 s on a busy machine.
  it(
    'stops the relay cleanly after a delivery attempt to an unreachable smart host',
    { timeout: 180_000 },
    async () => {
      // The consumer groups go to the relay that starts next only once this one has let them go.
      expect(await relay.stop('SIGINT')).toEqual({ code: 0, signal: null });
      await startRelay({ DELIVERY_SMART_HOST: `127.0.0.1:${REFUSED_PORT}` });
      const client = await authenticated('demo', first.demoAccount!.password);
      let reply: string;
      try {
        reply = await send(client, messageWith(`unreachable-${Date.now().toString(36)}`, 'Hello\r\n'));
      } finally {
        client.close();
      }
      const id = /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(reply)?.[1];
      expect(id).toBeDefined();
      // A refused connection is a temporary failure, retried later (DELIVERY_RETRY_SCHEDULE).
      const deferred = await waitFor(
        'Deferred after the refused connection',
        async () => (await eventsOf(log, 'Deferred', id))[0],
      );
      expect(deferred.data).toMatchObject({ recipient: 'someone@example.org', attempt: 1 });
      expect(await relay.stop('SIGINT')).toEqual({ code: 0, signal: null });
    },
  );
});

/** Whether a program runs here (swaks is not installed everywhere). */
function execFileOk(file: string, args: string[]): boolean {
  try {
    execFileSync(file, args, { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}
