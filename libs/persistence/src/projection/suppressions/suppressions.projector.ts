import type { EntityManager } from 'typeorm';
import { suppressionKey, type EventOfType } from '@relay/domain';
import type { Projection } from '../projection.js';

export const SUPPRESSION_EVENT_TYPES = ['SuppressionAdded', 'SuppressionRemoved'] as const;

export type SuppressionEvent = EventOfType<(typeof SUPPRESSION_EVENT_TYPES)[number]>;

interface ListingKey {
  readonly account_id: string;
  readonly list: string;
  readonly address_key: string;
}

interface Row extends ListingKey {
  readonly address: string;
  readonly reason: string;
  readonly source: string;
  readonly created_at: string;
}

/** What a batch does to one listing: delete the row it may have, then maybe insert a new one. */
interface NetChange {
  readonly listing: ListingKey;
  remove: boolean;
  insert: Row | undefined;
}

/** An existing row wins: a duplicate SuppressionAdded leaves the listing as it was first made. */
const INSERT_SQL = `
  INSERT INTO suppressions (account_id, list, address_key, address, reason, source, created_at)
  SELECT account_id, list, address_key, address, reason, source, created_at
  FROM jsonb_to_recordset($1::jsonb) AS r(
    account_id text, list text, address_key text, address text, reason text, source text,
    created_at timestamptz)
  ON CONFLICT (account_id, list, address_key) DO NOTHING`;

const DELETE_SQL = `
  DELETE FROM suppressions s
  USING jsonb_to_recordset($1::jsonb) AS r(account_id text, list text, address_key text)
  WHERE s.account_id = r.account_id AND s.list = r.list AND s.address_key = r.address_key`;

/**
 * Folds a batch, in log order, into one net change per listing (account, list, key). A removal
 * cancels whatever the batch added before it and deletes the stored row; the first add after it
 * (or in a batch without one) is inserted unless a row is there. Applied as DELETE then INSERT,
 * that is the same as applying the events one by one.
 */
function netChanges(events: readonly SuppressionEvent[]): NetChange[] {
  const changes = new Map<string, NetChange>();
  for (const event of events) {
    if (event.accountId === null) continue;
    const listing: ListingKey = {
      account_id: event.accountId,
      list: event.data.list,
      address_key: suppressionKey(event.data.address),
    };
    const id = JSON.stringify([listing.account_id, listing.list, listing.address_key]);
    const change = changes.get(id) ?? { listing, remove: false, insert: undefined };
    changes.set(id, change);
    switch (event.type) {
      case 'SuppressionAdded':
        change.insert ??= {
          ...listing,
          address: event.data.address,
          reason: event.data.reason,
          source: event.data.source,
          created_at: event.occurredAt,
        };
        break;
      case 'SuppressionRemoved':
        change.remove = true;
        change.insert = undefined;
        break;
    }
  }
  return [...changes.values()];
}

/**
 * Projection "suppressions": the accounts' Bounce and Unsubscribe lists, one row per listing
 * (migration 1764380700000-suppressions). SuppressionAdded lists an address under its
 * suppressionKey unless it is already listed (a duplicate add keeps the first row, its time and
 * spelling); SuppressionRemoved deletes the row, so a later add is a new listing with its own
 * time. Rows depend only on the events, in log order: a rebuild gives the same rows.
 */
export class SuppressionsProjector implements Projection<SuppressionEvent['type']> {
  readonly name = 'suppressions';
  readonly eventTypes = SUPPRESSION_EVENT_TYPES;

  async apply(event: SuppressionEvent, manager: EntityManager): Promise<void> {
    await this.applyBatch([event], manager);
  }

  /** Two statements per batch, whatever its size. */
  async applyBatch(events: readonly SuppressionEvent[], manager: EntityManager): Promise<void> {
    const changes = netChanges(events);
    const removed = changes.filter((c) => c.remove).map((c) => c.listing);
    const inserted = changes.flatMap((c) => (c.insert ? [c.insert] : []));
    if (removed.length > 0) await manager.query(DELETE_SQL, [JSON.stringify(removed)]);
    if (inserted.length > 0) await manager.query(INSERT_SQL, [JSON.stringify(inserted)]);
  }

  async reset(manager: EntityManager): Promise<void> {
    await manager.query(`TRUNCATE suppressions`);
  }
}
