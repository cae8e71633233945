/**
 * The nextCursor of a page read newest first by keyset: the last row's time, to the microsecond,
 * and the keys that order rows of the same time, as base64url JSON. Opaque to clients; the
 * repository that hands one out checks it before it reads with it.
 */

/** A timestamptz column as cursorTimeSql writes it (a Date would keep only milliseconds). */
const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/** SQL for `column` in the cursor's form of a time: UTC, to the microsecond, ending in Z. */
export const cursorTimeSql = (column: string): string =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export function encodeKeysetCursor(time: string, ...keys: readonly string[]): string {
  return Buffer.from(JSON.stringify([time, ...keys])).toString('base64url');
}

/**
 * The time and the `keyCount` keys of a cursor encodeKeysetCursor made; undefined for anything
 * else. The keys are as the client sent them: the caller checks them.
 */
export function decodeKeysetCursor(
  cursor: string,
  keyCount: number,
): { readonly time: string; readonly keys: readonly unknown[] } | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!Array.isArray(value) || value.length !== keyCount + 1) return undefined;
    const [time, ...keys] = value as unknown[];
    if (typeof time !== 'string' || !CURSOR_TIME.test(time)) return undefined;
    return { time, keys };
  } catch {
    return undefined;
  }
}
