/** A message id is a single path segment and a plain SQL key; 200 leaves room for `.eml` in a name. */
const MESSAGE_ID = /^[A-Za-z0-9_-]{1,200}$/;
const KEY = /^(\d{4}-\d{2}-\d{2})\/([A-Za-z0-9_-]{1,200})$/;

export interface SpoolKeyParts {
  /** UTC day of the write, `yyyy-mm-dd`. */
  readonly day: string;
  readonly messageId: string;
}

/** The UTC day a body was written on: the first part of its key and the local sweep's unit. */
export function dayOf(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/**
 * `<yyyy-mm-dd>/<messageId>` for both adapters, so a claim check in the log does not depend on
 * which spool wrote it. Throws for a message id that is not a plain token (never a path).
 */
export function spoolKeyFor(messageId: string, writtenAt: Date): string {
  if (!MESSAGE_ID.test(messageId)) {
    throw new Error(`invalid message id for the spool: ${JSON.stringify(messageId)}`);
  }
  return `${dayOf(writtenAt)}/${messageId}`;
}

/** The parts of a well-formed key; undefined for anything else (a path, `..`), which no body has. */
export function parseSpoolKey(key: string): SpoolKeyParts | undefined {
  const match = KEY.exec(key);
  return match ? { day: match[1] as string, messageId: match[2] as string } : undefined;
}

export function alreadySpooledError(key: string): Error {
  return new Error(`a body is already spooled under "${key}": a message id is written once`);
}
