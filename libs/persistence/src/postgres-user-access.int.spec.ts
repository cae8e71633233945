import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstDirectoryClosedTo } from './postgres-user-access.js';

describe('firstDirectoryClosedTo, on real directories', () => {
  let root: string;
  // Ids that own nothing here: the "other" permission bits apply to them.
  const stranger = { uid: 2_000_000_001, gid: 2_000_000_001 };
  const owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'relay-access-'));
    await chmod(root, 0o755);
    await mkdir(join(root, 'home', 'checkout', 'node_modules'), { recursive: true });
  });
  afterAll(async () => {
    await chmod(join(root, 'home'), 0o755);
    await rm(root, { recursive: true, force: true });
  });

  it('finds the first directory on the way that the user cannot enter (a checkout under /root)', async () => {
    await chmod(join(root, 'home'), 0o700);
    expect(await firstDirectoryClosedTo(join(root, 'home', 'checkout', 'node_modules'), stranger)).toEqual({
      directory: join(root, 'home'),
      mode: '0700',
    });
  });

  it("goes by the owner's bits for the owner and the group's bits for the group", async () => {
    await chmod(join(root, 'home'), 0o700);
    expect(await firstDirectoryClosedTo(join(root, 'home', 'checkout'), owner)).toBeUndefined();
    await chmod(join(root, 'home'), 0o710);
    expect(await firstDirectoryClosedTo(join(root, 'home'), { gid: owner.gid })).toBeUndefined();
    // The owner gets the owner's bits only, even where others may enter.
    await chmod(join(root, 'home'), 0o071);
    expect(await firstDirectoryClosedTo(join(root, 'home'), { uid: owner.uid })).toEqual({
      directory: join(root, 'home'),
      mode: '0071',
    });
  });

  it('passes a path whose directories are all open, and one not made yet', async () => {
    await chmod(join(root, 'home'), 0o755);
    expect(
      await firstDirectoryClosedTo(join(root, 'home', 'checkout', 'node_modules'), stranger),
    ).toBeUndefined();
    expect(await firstDirectoryClosedTo(join(root, 'home', 'var', 'not-yet'), stranger)).toBeUndefined();
  });
});
