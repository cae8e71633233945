import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { generate } from 'selfsigned';
import getTLSOptions from 'smtp-server/lib/tls-options.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, silentLogger } from '@relay/config';
import { startRelay } from '@relay/relay';
import { authPlain, createTestDatabase, type SmtpTestClient, type TestDatabase } from '@relay/testing';
import {
  capabilities,
  createSenderAccount,
  QUEUED,
  SENDER,
  sessionsClosedAfterEach,
} from '../support/smtp-sessions.js';
import { localRelayEnv, startTestRelay, type TestRelay } from '../support/test-relay.js';

const { username: USERNAME, password: PASSWORD } = SENDER;
const GREETING = '220 relay.test ESMTP relay ready';
/** The body and end-of-data line; SmtpTestClient.line adds the final CRLF. */
const MESSAGE = 'From: news@example.com\r\nTo: rcpt@example.org\r\nSubject: tls\r\n\r\nHello.\r\n.';
const base64 = (text: string): string => Buffer.from(text).toString('base64');

let t: TestRelay;

beforeAll(async () => {
  t = await startTestRelay();
  await createSenderAccount(t);
});

afterAll(async () => {
  await t?.stop();
});

const { connect } = sessionsClosedAfterEach();

/** One message through an authenticated session; returns the reply to the end of data. */
async function sendMessage(client: SmtpTestClient): Promise<string> {
  expect(await client.line('MAIL FROM:<news@example.com>')).toBe('250 2.1.0 Accepted');
  expect(await client.line('RCPT TO:<rcpt@example.org>')).toBe('250 2.1.5 Accepted');
  expect(await client.line('DATA')).toBe('354 End data with <CR><LF>.<CR><LF>');
  return client.line(MESSAGE);
}

/** The certificate the server presents on `port`: at once (implicit TLS) or after STARTTLS. */
async function presentedCertificate(
  port: number,
  how: 'implicit TLS' | 'STARTTLS',
): Promise<X509Certificate> {
  const { client, greeting } = await connect(port, { tls: how === 'implicit TLS' });
  try {
    if (how === 'STARTTLS') {
      expect(greeting).toEqual([GREETING]);
      expect(await client.startTls()).toBe('220 2.0.0 Ready to start TLS');
    }
    const certificate = client.peerCertificate();
    if (!certificate) throw new Error(`no certificate presented on port ${port}`);
    return certificate;
  } finally {
    client.close();
  }
}

const fileCertificate = async (path: string): Promise<X509Certificate> =>
  new X509Certificate(await readFile(path));

describe('the certificate without TLS_CERT_FILE and TLS_KEY_FILE', () => {
  const certFile = (): string => join(t.dataDir, 'tls', 'self-signed-cert.pem');
  const keyFile = (): string => join(t.dataDir, 'tls', 'self-signed-key.pem');

  it('is generated under the data directory for RELAY_HOSTNAME, its key readable by the owner only', async () => {
    const certificate = await fileCertificate(certFile());
    expect(certificate.subject).toBe('CN=relay.test');
    expect(certificate.checkHost('relay.test')).toBe('relay.test');
    expect(certificate.checkPrivateKey(createPrivateKey(await readFile(keyFile())))).toBe(true);
    expect((await stat(keyFile())).mode & 0o777).toBe(0o600);
  });

  it("is the one presented on both kinds of port, never smtp-server's built-in one", async () => {
    // smtp-server falls back to a test key pair shipped in the package, whose private half is public.
    const { cert: builtIn } = getTLSOptions();
    if (typeof builtIn !== 'string') throw new Error("smtp-server's built-in certificate moved");
    const expected = (await fileCertificate(certFile())).fingerprint256;
    expect(expected).not.toBe(new X509Certificate(builtIn).fingerprint256);
    expect((await presentedCertificate(t.smtpsPort, 'implicit TLS')).fingerprint256).toBe(expected);
    expect((await presentedCertificate(t.smtpPort, 'STARTTLS')).fingerprint256).toBe(expected);
  });

  it('is generated once: a restart presents the same one', async () => {
    const before = (await fileCertificate(certFile())).fingerprint256;
    await t.restart();
    expect((await fileCertificate(certFile())).fingerprint256).toBe(before);
    expect((await presentedCertificate(t.smtpsPort, 'implicit TLS')).fingerprint256).toBe(before);
    expect((await presentedCertificate(t.smtpPort, 'STARTTLS')).fingerprint256).toBe(before);
  });
});

/** Servers listening in this process, where the relay under test runs; polled while they close. */
async function listeningServers(atMost: number): Promise<number> {
  const count = (): number =>
    process.getActiveResourcesInfo().filter((resource) => resource === 'TCPServerWrap').length;
  const deadline = Date.now() + 5_000;
  while (count() > atMost && Date.now() < deadline) await sleep(50);
  return count();
}

/** Sessions still open on the database other than the one asking; a backend may take a moment to exit. */
async function connectionsLeftOn(db: TestDatabase): Promise<number> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const { rows } = await client.query<{ count: number }>(
        'SELECT count(*)::int AS count FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
      );
      const count = rows[0]?.count ?? -1;
      if (count === 0 || Date.now() > deadline) return count;
      await sleep(100);
    }
  } finally {
    await client.end();
  }
}

describe('TLS_CERT_FILE and TLS_KEY_FILE', () => {
  let dir: string;
  let certFile: string;
  let keyFile: string;
  let configured: TestRelay;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relay-tls-'));
    certFile = join(dir, 'cert.pem');
    keyFile = join(dir, 'key.pem');
    const pems = await generate([{ name: 'commonName', value: 'mail.custom.test' }], {
      keySize: 2048,
      algorithm: 'sha256',
    });
    await writeFile(certFile, pems.cert);
    await writeFile(keyFile, pems.private, { mode: 0o600 });
    configured = await startTestRelay({ TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile });
  });

  afterAll(async () => {
    await configured?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('presents exactly that certificate on both kinds of port, and generates none', async () => {
    const expected = (await fileCertificate(certFile)).fingerprint256;
    const implicit = await presentedCertificate(configured.smtpsPort, 'implicit TLS');
    expect(implicit.fingerprint256).toBe(expected);
    expect(implicit.subject).toBe('CN=mail.custom.test');
    expect((await presentedCertificate(configured.smtpPort, 'STARTTLS')).fingerprint256).toBe(expected);
    await expect(stat(join(configured.dataDir, 'tls'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  // startRelay itself, not startTestRelay: the harness drops its database when a start rejects,
  // and this test looks at what the failed start left connected to it first.
  it.each(['TLS_CERT_FILE', 'TLS_KEY_FILE'])(
    'refuses to start with only %s set, leaving nothing listening or connected',
    async (only) => {
      const db = await createTestDatabase('tls_refused');
      const dataDir = await mkdtemp(join(tmpdir(), 'relay-test-'));
      try {
        const config = loadConfig({
          ...localRelayEnv(db.url, dataDir),
          ADMIN_TOKEN: 'test-admin-token',
          RELAY_HOSTNAME: 'relay.test',
          [only]: only === 'TLS_CERT_FILE' ? certFile : keyFile,
        });
        // The roles that start before the SMTP edge (worker, admin API, tracker) open servers of
        // their own in this process: none of them may be left listening.
        const before = await listeningServers(Infinity);
        await expect(startRelay(config, silentLogger)).rejects.toThrow(
          new Error('TLS_CERT_FILE and TLS_KEY_FILE must be set together'),
        );
        expect(await listeningServers(before)).toBe(before);
        expect(await connectionsLeftOn(db)).toBe(0);
      } finally {
        await Promise.all([db.drop(), rm(dataDir, { recursive: true, force: true })]);
      }
    },
  );
});

describe('SMTP_PORTS and SMTPS_PORTS with several ports', () => {
  let multi: TestRelay;
  beforeAll(async () => {
    multi = await startTestRelay({ SMTP_PORTS: '0,0', SMTPS_PORTS: '0,0' });
  });
  afterAll(async () => {
    await multi?.stop();
  });

  it('listens on two plain and two implicit-TLS ports, each greeting with 220', async () => {
    const listeners = multi.relay.smtpListeners();
    expect(listeners).toHaveLength(4);
    expect(new Set(listeners.map((l) => l.port)).size).toBe(4);
    expect(listeners.filter((l) => l.implicitTls)).toHaveLength(2);
    expect(listeners.filter((l) => !l.implicitTls)).toHaveLength(2);
    for (const { port, implicitTls } of listeners) {
      // With `tls` the client handshakes first: a greeting read proves the port speaks TLS (or not).
      const { greeting } = await connect(port, { tls: implicitTls });
      expect(greeting).toEqual([GREETING]);
    }
  });
});

describe('EHLO', () => {
  it('offers STARTTLS and no AUTH on a plain port before TLS', async () => {
    const { client } = await connect(t.smtpPort);
    const offered = capabilities(await client.command('EHLO client.test'));
    expect(offered).toContain('STARTTLS');
    expect(offered.filter((c) => c.startsWith('AUTH'))).toEqual([]);
  });

  it('offers AUTH PLAIN LOGIN and no STARTTLS on the implicit-TLS port', async () => {
    const { client } = await connect(t.smtpsPort, { tls: true });
    const offered = capabilities(await client.command('EHLO client.test'));
    expect(offered).toContain('AUTH PLAIN LOGIN');
    expect(offered).not.toContain('STARTTLS');
  });
});

describe('MAIL FROM parameters', () => {
  it('refuses REQUIRETLS, which EHLO does not offer, rather than ignore it', async () => {
    const { client } = await connect(t.smtpsPort, { tls: true });
    expect(capabilities(await client.command('EHLO client.test'))).not.toContain('REQUIRETLS');
    expect(await client.line(`AUTH PLAIN ${authPlain(USERNAME, PASSWORD)}`)).toBe(
      '235 2.7.0 Authentication successful',
    );
    expect(await client.line('MAIL FROM:<news@example.com> REQUIRETLS')).toBe(
      '555 5.5.4 REQUIRETLS is not supported',
    );
    expect(await sendMessage(client)).toMatch(QUEUED);
  });
});

describe('AUTH', () => {
  it('takes AUTH LOGIN after STARTTLS on a plain port, then a message', async () => {
    const { client } = await connect(t.smtpPort);
    await client.command('EHLO client.test');
    expect(await client.startTls()).toBe('220 2.0.0 Ready to start TLS');
    await client.command('EHLO client.test');
    expect(await client.line('AUTH LOGIN')).toBe('334 VXNlcm5hbWU6');
    expect(await client.line(base64(USERNAME))).toBe('334 UGFzc3dvcmQ6');
    expect(await client.line(base64(PASSWORD))).toBe('235 2.7.0 Authentication successful');
    expect(await sendMessage(client)).toMatch(QUEUED);
  });

  it('takes AUTH PLAIN on the implicit-TLS port, then a message', async () => {
    const { client } = await connect(t.smtpsPort, { tls: true });
    await client.command('EHLO client.test');
    expect(await client.line(`AUTH PLAIN ${authPlain(USERNAME, PASSWORD)}`)).toBe(
      '235 2.7.0 Authentication successful',
    );
    expect(await sendMessage(client)).toMatch(QUEUED);
  });

  it('is refused before TLS by default, whatever the mechanism', async () => {
    const { client } = await connect(t.smtpPort);
    await client.command('EHLO client.test');
    expect(await client.line(`AUTH PLAIN ${authPlain(USERNAME, PASSWORD)}`)).toBe(
      '538 5.7.0 Error: Must issue a STARTTLS command first',
    );
    expect(await client.line('AUTH LOGIN')).toBe('538 5.7.0 Error: Must issue a STARTTLS command first');
  });

  describe('with SMTP_ALLOW_PLAINTEXT_AUTH=true', () => {
    let plaintext: TestRelay;
    beforeAll(async () => {
      plaintext = await startTestRelay({ SMTP_ALLOW_PLAINTEXT_AUTH: 'true' });
      await createSenderAccount(plaintext);
    });
    afterAll(async () => {
      await plaintext?.stop();
    });

    it('is offered and taken on a plain port without TLS', async () => {
      const { client } = await connect(plaintext.smtpPort);
      const offered = capabilities(await client.command('EHLO client.test'));
      expect(offered).toContain('AUTH PLAIN LOGIN');
      expect(await client.line(`AUTH PLAIN ${authPlain(USERNAME, PASSWORD)}`)).toBe(
        '235 2.7.0 Authentication successful',
      );
      expect(await sendMessage(client)).toMatch(QUEUED);
    });
  });
});

describe('enhanced status codes', () => {
  /**
   * RFC 2034 section 4: every 2xx, 4xx and 5xx reply line other than the greeting and the replies
   * to HELO and EHLO carries one (3xx replies are intermediate and carry none), of the reply's class.
   */
  const ENHANCED = /^([245])\d{2}[ -]\1\.\d{1,3}\.\d{1,3} /;
  const exempt = (command: string, line: string): boolean =>
    /^(HELO|EHLO) /.test(command) || line.startsWith('3');

  it('prefix every 2xx, 4xx and 5xx reply of a session but the greeting and HELO/EHLO', async () => {
    const session: [command: string, lastLine: string][] = [
      ['HELO client.test', '250 relay.test Nice to meet you, [127.0.0.1]'],
      ['EHLO client.test', '250 SIZE 31457280'],
      ['STARTTLS', '220 2.0.0 Ready to start TLS'],
      ['EHLO client.test', '250 SIZE 31457280'],
      ['AUTH LOGIN', '334 VXNlcm5hbWU6'],
      [base64(USERNAME), '334 UGFzc3dvcmQ6'],
      [base64(PASSWORD), '235 2.7.0 Authentication successful'],
      ['NOOP', '250 2.0.0 OK'],
      ['RSET', '250 2.0.0 Flushed'],
      ['VRFY x', '252 2.1.5 Try to send something. No promises though'],
      ['HELP', '214 2.0.0 See https://tools.ietf.org/html/rfc5321 for details'],
      ['FROBNICATE', '500 5.5.2 Error: command not recognized'],
      ['MAIL FROM:news@example.com', '501 5.1.7 Error: Bad sender address syntax'],
      ['RCPT TO:<rcpt@example.org>', '503 5.5.1 Error: need MAIL command'],
      ['MAIL FROM:<news@example.com>', '250 2.1.0 Accepted'],
      ['DATA', '503 5.5.1 Error: need RCPT command'],
      ['RCPT TO:<rcpt@example.org>', '250 2.1.5 Accepted'],
      ['MAIL FROM:<news@example.com>', '503 5.5.1 Error: nested MAIL command'],
      ['DATA', '354 End data with <CR><LF>.<CR><LF>'],
      [MESSAGE, '250 2.0.0 Ok: queued as <id>'],
      ['QUIT', '221 2.0.0 Bye'],
    ];
    const { client, greeting } = await connect(t.smtpPort);
    expect(greeting).toEqual([GREETING]);
    const transcript: { command: string; reply: string[] }[] = [];
    for (const [command] of session) {
      const reply = command === 'STARTTLS' ? [await client.startTls()] : await client.command(command);
      transcript.push({ command, reply });
    }
    // Checked after the whole session, so that a failure lists every reply without a code.
    const uncoded = transcript.flatMap(({ command, reply }) =>
      reply.filter((line) => !exempt(command, line) && !ENHANCED.test(line)),
    );
    expect(uncoded).toEqual([]);
    const withoutId = (line = ''): string => line.replace(/ [0-9a-z]{9}[0-9a-f]{16}$/, ' <id>');
    expect(transcript.map(({ reply }) => withoutId(reply.at(-1)))).toEqual(session.map(([, last]) => last));
  });
});
