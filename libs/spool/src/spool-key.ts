/** A message id is a single path segment and a plain SQL key; 200 leaves room for `.eml` in a name. */
export const MAX_MESSAGE_ID_LENGTH = 200;
/** Regular-expression sources, shared by every key format of the spool. */
export const MESSAGE_ID_PATTERN = `[A-Za-z0-9_-]{1,${MAX_MESSAGE_ID_LENGTH}}`;
export const DAY_PATTERN = '\\d{4}-\\d{2}-\\d{2}';
const MESSAGE_ID = new RegExp(`^${MESSAGE_ID_PATTERN}$`);
const DAY = new RegExp(`^${DAY_PATTERN}$`);
const KEY = new RegExp(`^(${DAY_PATTERN})/(${MESSAGE_ID_PATTERN})$`);

export interface SpoolKeyParts {
  /** UTC day of the write, `yyyy-mm-dd`. */
  readonly day: string;
  readonly messageId: string;
}

/** The UTC day a body was written on: the first part of its key and the local sweep's unit. */
export function dayOf(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** Whether `name` is a `yyyy-mm-dd` day (a day directory of the local spool). */
export function isDay(name: string): boolean {
  return DAY.test(name);
}

/**
 * `<yyyy-mm-dd>/<messageId>`: the key of a body stored under its message id (a Postgres row, a
 * local body file), `day` being dayOf its write. Throws for a message id that is not a plain
 * token (never a path).
 */
export function spoolKeyFor(messageId: string, day: string): string {
  if (!MESSAGE_ID.test(messageId)) {
    throw new Error(`invalid message id for the spool: ${JSON.stringify(messageId)}`);
  }
  return `${day}/${messageId}`;
}

/** The parts of a well-formed key; undefined for anything else (a path, `..`), which no body has. */
export function parseSpoolKey(key: string): SpoolKeyParts | undefined {
  const match = KEY.exec(key);
  return match ? { day: match[1] as string, messageId: match[2] as string } : undefined;
}

export function alreadySpooledError(key: string): Error {
  return new Error(`a body is already spooled under "${key}": a body once written is never replaced`);
}
