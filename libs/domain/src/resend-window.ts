/**
 * How far back support may resend an upgraded account's held mail (issue 7: the last three days).
 * The spool keeps bodies at least this long (SPOOL_RETENTION), and notifications quote it.
 */
export const RESEND_WINDOW_MS = 72 * 3_600_000;
