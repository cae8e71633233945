import type { RelayEvent } from '@relay/domain';
import type { EntityManager } from 'typeorm';

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

/**
 * Writes `events` to the outbox in the caller's transaction, so they reach the event log if and
 * only if the row change they describe commits (OutboxRelay moves them). Events of one account
 * keep their order in the log as long as every writer locks the account's row before calling
 * this: a later transaction then also takes later outbox ids.
 */
export async function appendToOutbox(manager: EntityManager, events: readonly RelayEvent[]): Promise<void> {
  if (events.length === 0) return;
  if (manager.queryRunner?.isTransactionActive !== true) {
    // Outside a transaction the events would be published even if the caller's change then failed.
    throw new Error('appendToOutbox must run inside the transaction of the change it describes');
  }
  await manager.query(INSERT_SQL, [JSON.stringify(events)]);
}
