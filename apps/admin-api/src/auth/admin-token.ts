import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export interface AdminToken {
  readonly token: string;
  /** config: ADMIN_TOKEN; stored: read from the data dir; generated: created just now (print it once). */
  readonly source: 'config' | 'stored' | 'generated';
  /** Where the token is kept, unless it came from the config. */
  readonly file?: string;
}

const FILE_NAME = 'admin-token';

function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === code;
}

async function readToken(file: string): Promise<string | undefined> {
  try {
    const token = (await readFile(file, 'utf8')).trim();
    if (token === '') throw new Error(`${file} is empty: delete it to have a new admin token generated`);
    return token;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  }
}

/**
 * The admin API's bearer token: ADMIN_TOKEN when configured, else the one stored in
 * `<dataDir>/admin-token`, else a new random one written there (mode 0600) at first start.
 * The file appears complete or not at all (written aside, then hard-linked into place), so
 * processes starting together all end up with the same token.
 */
export async function ensureAdminToken(dataDir: string, configured: string | undefined): Promise<AdminToken> {
  if (configured) return { token: configured, source: 'config' };
  const dir = resolve(dataDir);
  const file = join(dir, FILE_NAME);
  const stored = await readToken(file);
  if (stored) return { token: stored, source: 'stored', file };

  await mkdir(dir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  const draft = join(dir, `.${FILE_NAME}.${process.pid}.${randomBytes(4).toString('hex')}`);
  await writeFile(draft, `${token}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(draft, file);
    return { token, source: 'generated', file };
  } catch (error) {
    if (!isErrno(error, 'EEXIST')) throw error;
    const winner = await readToken(file);
    if (!winner) throw error;
    return { token: winner, source: 'stored', file };
  } finally {
    await unlink(draft).catch(() => undefined);
  }
}
