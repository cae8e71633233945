import { dkimSelectorFor, encryptPrivateKey, generateDkimKeys, type DkimKeyType } from '@relay/mime';
import type { StoredDkimKey } from './account.entity.js';
import type { DkimKeySecret, DkimSettings } from './accounts.repository.js';

/** The secret itself; asked for only when a key is to be encrypted or decrypted. */
export async function resolveSecret(secret: DkimKeySecret | undefined): Promise<string> {
  if (secret === undefined) throw new Error('DKIM keys are to be generated but no DKIM key secret was given');
  return typeof secret === 'string' ? secret : secret();
}

/** The account's DKIM state as far as its keys go. */
export interface CurrentDkim {
  readonly dkimDomain: string | null;
  readonly dkimSelector: string | null;
  readonly dkimKeys: readonly StoredDkimKey[];
}

/** Which keys to keep and which to generate for `wanted`. */
export interface DkimKeyPlan {
  readonly domain: string;
  readonly selector: string;
  readonly keep: readonly StoredDkimKey[];
  readonly generate: readonly DkimKeyType[];
}

/** DNS names are case-insensitive; stored lowercased, so "the same selector" is a plain comparison. */
export function canonicalDkim(settings: DkimSettings): { domain: string; selector: string } {
  return { domain: settings.domain.toLowerCase(), selector: settings.selector.toLowerCase() };
}

/**
 * Keys are never replaced behind the sender's back: the same domain and selector keep the keys
 * whose TXT records are published (only an Ed25519 key is added or dropped as asked). A new
 * domain or selector, or `rotate`, gets new keys, which need new TXT records.
 */
export function planDkimKeys(current: CurrentDkim | null, wanted: DkimSettings): DkimKeyPlan {
  const { domain, selector } = canonicalDkim(wanted);
  const keys = current?.dkimKeys ?? [];
  const rsa = keys.find((k) => k.type === 'rsa');
  const ed = keys.find((k) => k.type === 'ed25519');
  const wantEd = wanted.ed25519 ?? ed !== undefined;
  const same = current?.dkimDomain === domain && current.dkimSelector === selector;
  if (!same || wanted.rotate === true || rsa === undefined) {
    return { domain, selector, keep: [], generate: wantEd ? ['rsa', 'ed25519'] : ['rsa'] };
  }
  if (!wantEd) return { domain, selector, keep: [rsa], generate: [] };
  return ed
    ? { domain, selector, keep: [rsa, ed], generate: [] }
    : { domain, selector, keep: [rsa], generate: ['ed25519'] };
}

/**
 * The keys of `plan`, RSA first: those kept, plus new ones encrypted with `secret`. A key in
 * `prepared` (made ahead for the same domain and selector) is used rather than made again.
 */
export async function dkimKeysFor(
  plan: DkimKeyPlan,
  secret: DkimKeySecret | undefined,
  prepared: readonly StoredDkimKey[] = [],
): Promise<StoredDkimKey[]> {
  const made: StoredDkimKey[] = [];
  const missing: DkimKeyType[] = [];
  for (const type of plan.generate) {
    const ready = prepared.find((k) => k.type === type && isFor(k, plan));
    if (ready) made.push(ready);
    else missing.push(type);
  }
  if (missing.length > 0) made.push(...(await newDkimKeys(plan, missing, await resolveSecret(secret))));
  return [...plan.keep, ...made].sort((a, b) => typeRank(a.type) - typeRank(b.type));
}

const typeRank = (type: DkimKeyType): number => (type === 'rsa' ? 0 : 1);

function isFor(key: StoredDkimKey, plan: DkimKeyPlan): boolean {
  const selector = dkimSelectorFor(plan.selector, key.type);
  return key.selector === selector && key.dnsRecord.name === `${selector}._domainkey.${plan.domain}`;
}

async function newDkimKeys(
  plan: DkimKeyPlan,
  types: readonly DkimKeyType[],
  secret: string,
): Promise<StoredDkimKey[]> {
  // generateDkimKeys always makes the RSA key; when only Ed25519 is wanted, that one is dropped.
  const generated = await generateDkimKeys({
    domain: plan.domain,
    selector: plan.selector,
    ed25519: types.includes('ed25519'),
  });
  const createdAt = new Date().toISOString();
  return Promise.all(
    generated
      .filter((key) => types.includes(key.type))
      .map(async (key) => ({
        type: key.type,
        selector: key.selector,
        privateKey: await encryptPrivateKey(key.privateKeyPem, secret),
        dnsRecord: { name: key.dnsRecord.name, type: key.dnsRecord.type, value: key.dnsRecord.value },
        createdAt,
      })),
  );
}
