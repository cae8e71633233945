import { promises as dns } from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsTestServer } from '@relay/testing';
import { MxRouter } from './mx-router.js';

describe('MxRouter against a real DNS server', () => {
  const server = new DnsTestServer({
    'mx.test': {
      mx: [
        { exchange: 'backup.mx.test', priority: 20 },
        { exchange: 'primary.mx.test', priority: 10 },
      ],
    },
    'null-mx.test': { mx: [{ exchange: '', priority: 0 }] },
    'a-only.test': { a: ['192.0.2.10'] },
    'v6-only.test': { aaaa: ['2001:db8::25'] },
    'nothing.test': {},
    'gone.test': { nxdomain: true },
    'broken.test': { servfail: true },
  });
  let router: MxRouter;

  beforeAll(async () => {
    await server.start();
    const resolver = new dns.Resolver({ timeout: 500, tries: 1 });
    resolver.setServers([server.address]);
    router = new MxRouter({ resolver, cacheTtlMs: 0 });
  });
  afterAll(async () => {
    await server.stop();
  });

  it('orders MX hosts by preference (RFC 5321 5.1)', async () => {
    expect(await router.route('mx.test')).toEqual({
      kind: 'hosts',
      hosts: [
        { host: 'primary.mx.test', port: 25 },
        { host: 'backup.mx.test', port: 25 },
      ],
    });
  });

  it('falls back to the domain itself when it has an address but no MX', async () => {
    expect(await router.route('a-only.test')).toEqual({
      kind: 'hosts',
      hosts: [{ host: 'a-only.test', port: 25 }],
    });
    expect(await router.route('v6-only.test')).toEqual({
      kind: 'hosts',
      hosts: [{ host: 'v6-only.test', port: 25 }],
    });
  });

  it('treats a null MX (RFC 7505) as permanent failure', async () => {
    expect(await router.route('null-mx.test')).toMatchObject({
      kind: 'undeliverable',
      enhancedCode: '5.1.10',
    });
  });

  it('treats a domain that does not exist, or has neither MX nor address, as permanent failure', async () => {
    expect(await router.route('gone.test')).toMatchObject({ kind: 'undeliverable', enhancedCode: '5.1.2' });
    expect(await router.route('nothing.test')).toMatchObject({
      kind: 'undeliverable',
      enhancedCode: '5.1.2',
    });
  });

  it('treats SERVFAIL as temporary, and does not cache it', async () => {
    expect(await router.route('broken.test')).toMatchObject({ kind: 'temporary-failure' });
  });

  it('sends everything to the smart host when one is set, and an address literal to itself', async () => {
    const smart = new MxRouter({ smartHost: { host: '127.0.0.1', port: 2626 } });
    expect(await smart.route('anything.test')).toEqual({
      kind: 'hosts',
      hosts: [{ host: '127.0.0.1', port: 2626 }],
    });
    expect(await router.route('[192.0.2.7]')).toEqual({
      kind: 'hosts',
      hosts: [{ host: '192.0.2.7', port: 25 }],
    });
  });
});
