import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureMx, REFUSED_PORT } from '@relay/testing';
import { OutboundPool } from './outbound-pool.js';
import { sendTransaction, type RecipientResult, type TransactionRequest } from './smtp-transaction.js';

const body = (subject: string): string =>
  `From: a@sender.test\r\nTo: b@rcpt.test\r\nSubject: ${subject}\r\n\r\nHello.\r\n`;

const request = (recipients: string[], subject: string): TransactionRequest => ({
  mailFrom: 'bounces@relay.test',
  recipients,
  size: body(subject).length,
  smtpUtf8: false,
  eightBitMime: false,
  openBody: () => Promise.resolve(Readable.from([Buffer.from(body(subject))])),
});

describe('OutboundPool against a real SMTP server', () => {
  const mx = new CaptureMx((recipient) =>
    recipient.startsWith('unknown') ? { code: 550, message: '5.1.1 no such user' } : undefined,
  );
  let pool: OutboundPool;
  let hosts: { host: string; port: number }[];

  beforeAll(async () => {
    await mx.start();
    hosts = [{ host: '127.0.0.1', port: mx.port }];
    pool = new OutboundPool({ name: 'relay.test', perHost: 1 });
  });
  afterAll(async () => {
    pool.close();
    await mx.stop();
  });

  it('sends consecutive transactions over one connection, each complete on its own', async () => {
    for (const subject of ['one', 'two', 'three']) {
      const results = await sendTransaction(pool, hosts, request(['b@rcpt.test'], subject));
      expect(results).toEqual([expect.objectContaining({ recipient: 'b@rcpt.test', outcome: 'accepted' })]);
    }
    const sent = mx.messages.slice(-3);
    expect(sent.map((m) => m.raw.toString()).map((raw) => /Subject: (\w+)/.exec(raw)?.[1])).toEqual([
      'one',
      'two',
      'three',
    ]);
    expect(sent.every((m) => m.recipients.join() === 'b@rcpt.test')).toBe(true);
    expect(new Set(sent.map((m) => m.session)).size).toBe(1);
  });

  it('keeps the connection after a partly refused transaction, and the next one is clean', async () => {
    const mixed = await sendTransaction(pool, hosts, request(['unknown@rcpt.test', 'c@rcpt.test'], 'four'));
    expect(mixed).toEqual([
      expect.objectContaining({ recipient: 'unknown@rcpt.test', outcome: 'rejected', code: 550 }),
      expect.objectContaining({ recipient: 'c@rcpt.test', outcome: 'accepted' }),
    ]);
    const next = await sendTransaction(pool, hosts, request(['d@rcpt.test'], 'five'));
    expect(next).toEqual([expect.objectContaining({ recipient: 'd@rcpt.test', outcome: 'accepted' })]);
    const [four, five] = mx.messages.slice(-2);
    // The refused recipient of the earlier transaction does not leak into the next envelope.
    expect(four?.recipients).toEqual(['c@rcpt.test']);
    expect(five?.recipients).toEqual(['d@rcpt.test']);
    expect(five?.session).toBe(four?.session);
  });

  it('delivers the next message cleanly after a transaction every recipient of which was refused', async () => {
    const refused = await sendTransaction(pool, hosts, request(['unknown@rcpt.test'], 'six'));
    expect(refused).toEqual([expect.objectContaining({ outcome: 'rejected', code: 550 })]);
    const next = await sendTransaction(pool, hosts, request(['e@rcpt.test'], 'seven'));
    expect(next).toEqual([expect.objectContaining({ recipient: 'e@rcpt.test', outcome: 'accepted' })]);
    expect(mx.messages.at(-1)?.recipients).toEqual(['e@rcpt.test']);
    expect(mx.messages.at(-1)?.raw.toString()).toContain('Subject: seven');
  });
});

/** Why the one recipient of a transaction failed without any reply from the host. */
const failureReason = ([result]: RecipientResult[]): string =>
  result?.outcome === 'failed' ? result.reason : `not failed: ${JSON.stringify(result)}`;

describe('OutboundPool against hosts that cannot be reached', () => {
  let pool: OutboundPool;
  /** Accepts connections and never says a word: a greeting timeout. */
  let silent: Server;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    pool = new OutboundPool({ name: 'relay.test', perHost: 1, connectTimeoutMs: 500 });
    silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    pool.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it('fails a connection refused, and frees the host slot for the next attempt', async () => {
    const port = REFUSED_PORT;
    // perHost is 1: had the first attempt kept its slot, the second would wait forever.
    for (const subject of ['refused once', 'refused twice']) {
      const results = await sendTransaction(
        pool,
        [{ host: '127.0.0.1', port }],
        request(['b@rcpt.test'], subject),
      );
      expect(results).toEqual([expect.objectContaining({ recipient: 'b@rcpt.test', outcome: 'failed' })]);
      expect(failureReason(results)).toContain('ECONNREFUSED');
    }
  });

  it('fails a host that accepts the connection but never greets', async () => {
    const { port } = silent.address() as AddressInfo;
    const results = await sendTransaction(
      pool,
      [{ host: '127.0.0.1', port }],
      request(['b@rcpt.test'], 'silent'),
    );
    expect(results).toEqual([expect.objectContaining({ recipient: 'b@rcpt.test', outcome: 'failed' })]);
    expect(failureReason(results)).toMatch(/greeting/i);
  });
});
