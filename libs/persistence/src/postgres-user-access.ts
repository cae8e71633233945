import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** The OS user Postgres runs as when the relay runs as root; undefined ids: not created yet. */
export interface PostgresUserIds {
  readonly uid?: number;
  readonly gid?: number;
}

const S_IXUSR = 0o100;
const S_IXGRP = 0o010;
const S_IXOTH = 0o001;

/**
 * The first directory on the way to `path` (itself included, if it exists) that the user cannot
 * enter, going by its permission bits; undefined when every existing one can be entered. A
 * checkout under /root (mode 0700) is the usual case: Postgres, run as its own OS user, then
 * cannot reach its binaries or its data directory.
 */
export async function firstDirectoryClosedTo(
  path: string,
  user: PostgresUserIds,
): Promise<{ readonly directory: string; readonly mode: string } | undefined> {
  const chain: string[] = [];
  for (let directory = resolve(path); ; directory = dirname(directory)) {
    chain.unshift(directory);
    if (dirname(directory) === directory) break;
  }
  for (const directory of chain) {
    const info = await stat(directory).catch(() => undefined);
    // Not made yet: the relay makes it, readable by everyone.
    if (!info) return undefined;
    if (!info.isDirectory()) continue;
    const bit =
      user.uid !== undefined && info.uid === user.uid
        ? S_IXUSR
        : user.gid !== undefined && info.gid === user.gid
          ? S_IXGRP
          : S_IXOTH;
    if ((info.mode & bit) === 0) {
      return { directory, mode: (info.mode & 0o777).toString(8).padStart(4, '0') };
    }
  }
  return undefined;
}
