import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureAdminToken } from './admin-token.js';

describe('ensureAdminToken', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relay-admin-token-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('uses ADMIN_TOKEN when configured, and writes nothing', async () => {
    expect(await ensureAdminToken(dir, 'configured-token')).toEqual({
      token: 'configured-token',
      source: 'config',
    });
    expect(await readdir(dir)).toEqual([]);
  });

  it('generates a token at first start, stores it with mode 0600, and reuses it afterwards', async () => {
    const dataDir = join(dir, 'var');
    const first = await ensureAdminToken(dataDir, undefined);
    const file = join(dataDir, 'admin-token');
    expect(first).toEqual({ token: first.token, source: 'generated', file });
    expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await readFile(file, 'utf8')).trim()).toBe(first.token);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await ensureAdminToken(dataDir, undefined)).toEqual({
      token: first.token,
      source: 'stored',
      file,
    });
    expect(await readdir(dataDir)).toEqual(['admin-token']);
  });

  it('gives processes starting together one and the same token', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => ensureAdminToken(dir, undefined)));
    expect(new Set(results.map((r) => r.token)).size).toBe(1);
    expect(results.filter((r) => r.source === 'generated')).toHaveLength(1);
    expect(await readdir(dir)).toEqual(['admin-token']);
  });

  it('refuses an empty token file rather than accept an empty token', async () => {
    await writeFile(join(dir, 'admin-token'), '\n');
    await expect(ensureAdminToken(dir, undefined)).rejects.toThrow(/admin-token is empty/);
  });
});
