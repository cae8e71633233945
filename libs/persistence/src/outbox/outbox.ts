import type { RelayEvent } from '@relay/domain';
import type { DataSource, EntityManager } from 'typeorm';

/** NOTIFY channel that wakes OutboxRelay; Postgres delivers it only when the writer commits. */
export const OUTBOX_CHANNEL = 'outbox';

/**
 * One statement: rows take ids in the callers' order, and the notify is queued in the same
 * transaction (a data-modifying CTE runs to completion even though the outer SELECT ignores it).
 */
const INSERT_SQL = `
  WITH written AS (
    INSERT INTO outbox (event)
    SELECT e FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS batch(e, n)
    ORDER BY n
  )
  SELECT pg_notify('${OUTBOX_CHANNEL}', '')`;

/** Writes events into the event log itself, in the caller's transaction. */
export type DirectEventWriter = (manager: EntityManager, events: readonly RelayEvent[]) => Promise<void>;

const directWriters = new WeakMap<DataSource, DirectEventWriter>();

/**
 * When the event log is the Postgres log in the same database as `dataSource`, events written
 * through appendToOutbox on it go straight into the log in the caller's transaction: the same
 * atomicity as the outbox, without the relay's extra transactions and wake-up per event.
 */
export function writeEventsDirectly(dataSource: DataSource, writer: DirectEventWriter): void {
  directWriters.set(dataSource, writer);
}

/**
 * Writes `events` to the outbox in the caller's transaction, so they reach the event log if and
 * only if the row change they describe commits (OutboxRelay moves them, unless the log takes them
 * directly: writeEventsDirectly). Events of one account keep their order in the log as long as
 * every writer locks the account's row before calling this: a later transaction then also takes
 * later outbox ids.
 */
export async function appendToOutbox(manager: EntityManager, events: readonly RelayEvent[]): Promise<void> {
  if (events.length === 0) return;
  if (manager.queryRunner?.isTransactionActive !== true) {
    // Outside a transaction the events would be published even if the caller's change then failed.
    throw new Error('appendToOutbox must run inside the transaction of the change it describes');
  }
  const direct = directWriters.get(manager.connection);
  if (direct) await direct(manager, events);
  else await manager.query(INSERT_SQL, [JSON.stringify(events)]);
}
