import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, type RelayConfig } from './config.schema.js';

export interface Secret {
  readonly value: string;
  /** config: from the environment; stored: read from the data dir; generated: created just now. */
  readonly source: 'config' | 'stored' | 'generated';
  /** Where the secret is kept, unless it came from the config. */
  readonly file?: string;
}

const SECRET_FILE_NAME = /^[a-z0-9][a-z0-9-]*$/;

function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === code;
}

async function readSecret(file: string): Promise<string | undefined> {
  try {
    const value = (await readFile(file, 'utf8')).trim();
    if (value === '') throw new Error(`${file} is empty: delete it to have a new secret generated`);
    return value;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  }
}

/**
 * A secret of the relay: `configured` when set, else the one stored in `<dataDir>/<name>`, else a
 * new random one (256 bits, base64url) written there with mode 0600 at first start. The file
 * appears complete or not at all (written aside, then hard-linked into place, which fails if the
 * name exists), so processes starting together on one data dir all end up with the same secret.
 */
export async function ensureSecret(
  dataDir: string,
  name: string,
  configured: string | undefined,
): Promise<Secret> {
  if (configured) return { value: configured, source: 'config' };
  if (!SECRET_FILE_NAME.test(name)) throw new Error(`not a secret file name: "${name}"`);
  const dir = resolve(dataDir);
  const file = join(dir, name);
  const stored = await readSecret(file);
  if (stored) return { value: stored, source: 'stored', file };

  await mkdir(dir, { recursive: true, mode: 0o700 });
  const value = randomBytes(32).toString('base64url');
  const draft = join(dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}`);
  await writeFile(draft, `${value}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(draft, file);
    return { value, source: 'generated', file };
  } catch (error) {
    if (!isErrno(error, 'EEXIST')) throw error;
    const winner = await readSecret(file);
    if (!winner) throw error;
    return { value: winner, source: 'stored', file };
  } finally {
    await unlink(draft).catch(() => undefined);
  }
}

/** File under the data dir that keeps the generated tracking key. */
export const TRACKING_SECRET_FILE = 'tracking-secret';

/** Shorter keys are refused: the key is all that stands between the click endpoint and an open redirect. */
const MIN_TRACKING_SECRET_LENGTH = 16;

/**
 * The HMAC key of tracking and unsubscribe tokens: TRACKING_SECRET, else `<dataDir>/tracking-secret`
 * (generated at first start). The delivery stage that signs and the tracker that verifies must both
 * load it through here, so they agree whichever starts first.
 */
export async function trackingKey(config: Pick<RelayConfig, 'dataDir' | 'trackingSecret'>): Promise<string> {
  if (config.trackingSecret !== undefined && config.trackingSecret.length < MIN_TRACKING_SECRET_LENGTH) {
    throw new ConfigError(
      `Invalid TRACKING_SECRET: expected at least ${MIN_TRACKING_SECRET_LENGTH} characters, got ${config.trackingSecret.length}`,
    );
  }
  return (await ensureSecret(config.dataDir, TRACKING_SECRET_FILE, config.trackingSecret)).value;
}

/** File under the data dir that keeps the generated DKIM key secret. */
export const DKIM_KEY_SECRET_FILE = 'dkim-key-secret';

/** A short secret would make the encrypted keys at rest guessable (scrypt slows guessing, it cannot stop it). */
const MIN_DKIM_KEY_SECRET_LENGTH = 16;

/**
 * The secret that encrypts the accounts' DKIM private keys at rest: DKIM_KEY_SECRET, else
 * `<dataDir>/dkim-key-secret` (generated at first use). The admin API that encrypts and the
 * delivery stage that decrypts must both load it through here. Changing it makes the stored keys
 * unreadable: they then have to be rotated (PATCH /v1/accounts/:id with dkim.rotate).
 */
export async function dkimKeySecret(config: Pick<RelayConfig, 'dataDir' | 'dkimKeySecret'>): Promise<string> {
  if (config.dkimKeySecret !== undefined && config.dkimKeySecret.length < MIN_DKIM_KEY_SECRET_LENGTH) {
    throw new ConfigError(
      `Invalid DKIM_KEY_SECRET: expected at least ${MIN_DKIM_KEY_SECRET_LENGTH} characters, got ${config.dkimKeySecret.length}`,
    );
  }
  return (await ensureSecret(config.dataDir, DKIM_KEY_SECRET_FILE, config.dkimKeySecret)).value;
}
