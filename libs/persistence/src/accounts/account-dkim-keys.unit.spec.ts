import { describe, expect, it } from 'vitest';
import { planDkimKeys, type CurrentDkim } from './account-dkim-keys.js';
import type { StoredDkimKey } from './account.entity.js';

const key = (type: StoredDkimKey['type'], selector: string, domain = 'example.com'): StoredDkimKey => ({
  type,
  selector,
  privateKey: `dkimkey:v1:scrypt:${type}`,
  dnsRecord: { name: `${selector}._domainkey.${domain}`, type: 'TXT', value: `v=DKIM1; k=${type}; p=x` },
  createdAt: '2026-01-01T00:00:00.000Z',
});
const rsa = key('rsa', 's1');
const ed = key('ed25519', 's1-ed25519');
const current = (keys: StoredDkimKey[]): CurrentDkim => ({
  dkimDomain: 'example.com',
  dkimSelector: 's1',
  dkimKeys: keys,
});

describe('planDkimKeys', () => {
  it.each([
    ['a new account', null, {}, [], ['rsa']],
    ['a new account with Ed25519', null, { ed25519: true }, [], ['rsa', 'ed25519']],
    ['the same settings (any case)', current([rsa]), { domain: 'EXAMPLE.com', selector: 'S1' }, [rsa], []],
    ['the same settings with Ed25519, left out', current([rsa, ed]), {}, [rsa, ed], []],
    ['Ed25519 added', current([rsa]), { ed25519: true }, [rsa], ['ed25519']],
    ['Ed25519 dropped', current([rsa, ed]), { ed25519: false }, [rsa], []],
    ['rotate', current([rsa, ed]), { rotate: true }, [], ['rsa', 'ed25519']],
    ['rotate without Ed25519', current([rsa, ed]), { rotate: true, ed25519: false }, [], ['rsa']],
    ['a new selector', current([rsa, ed]), { selector: 's2' }, [], ['rsa', 'ed25519']],
    ['a new domain', current([rsa]), { domain: 'example.org' }, [], ['rsa']],
    ['settings without keys', current([]), {}, [], ['rsa']],
  ])('%s', (_, now, wanted, keep, generate) => {
    const plan = planDkimKeys(now, { domain: 'example.com', selector: 's1', ...wanted });
    expect(plan.keep).toEqual(keep);
    expect(plan.generate).toEqual(generate);
  });
});
