/** Timing shared by the Postgres event log's own connections (pool, subscriptions, listener). */
export const CONNECT_TIMEOUT_MS = 10_000;
/** A lost session is opened again after this, doubling up to RECONNECT_MAX_MS while it fails. */
export const RECONNECT_MIN_MS = 250;
export const RECONNECT_MAX_MS = 10_000;
