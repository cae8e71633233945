import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { createEvent, type SuppressionSource } from '@relay/domain';
import { appendToOutbox, SuppressionsRepository } from '@relay/persistence';
import type { SuppressionToAdd } from './suppression-import.js';

export interface AddSuppressionsCommand {
  readonly accountId: string;
  /** Each listing once (the caller removes repeats). */
  readonly entries: readonly SuppressionToAdd[];
  readonly source: Extract<SuppressionSource, 'admin' | 'import'>;
}

export interface AddSuppressionsResult {
  /** SuppressionAdded events recorded. */
  readonly recorded: number;
  /** Entries already on their list (as the read model shows it): no event. */
  readonly alreadyListed: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Events per outbox statement: keeps each statement's JSON parameter to a few megabytes. */
const OUTBOX_CHUNK = 5_000;

/**
 * Locks the account's row for the rest of the transaction: the events of one account then enter
 * the outbox, and so the log, in the order their transactions commit (outbox.ts), and an add and
 * a removal of the same address made at the same time cannot swap places. False: no such account.
 */
export async function lockAccount(manager: EntityManager, accountId: string): Promise<boolean> {
  if (!UUID.test(accountId)) return false;
  const rows: unknown[] = await manager.query(`SELECT id FROM accounts WHERE id = $1 FOR NO KEY UPDATE`, [
    accountId,
  ]);
  return rows.length > 0;
}

/**
 * Records SuppressionAdded for each entry not already on its list, through the outbox, in one
 * transaction: all or none, durable when this resolves. The read model (and so the policy stage)
 * follows once the projector has applied them.
 */
@Injectable()
export class AddSuppressionsHandler {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(SuppressionsRepository) private readonly suppressions: SuppressionsRepository,
  ) {}

  /** Undefined when no account has the id. */
  async execute(command: AddSuppressionsCommand): Promise<AddSuppressionsResult | undefined> {
    // Adding a listed address again would change nothing but the log's size. Read before the
    // transaction: inside it, a second connection per request could exhaust the pool.
    const fresh = await this.suppressions.unlisted(command.accountId, command.entries);
    return this.dataSource.transaction(async (manager) => {
      if (!(await lockAccount(manager, command.accountId))) return undefined;
      for (let i = 0; i < fresh.length; i += OUTBOX_CHUNK) {
        const events = fresh.slice(i, i + OUTBOX_CHUNK).map((entry) =>
          createEvent('SuppressionAdded', {
            accountId: command.accountId,
            data: { address: entry.address, list: entry.list, source: command.source, reason: entry.reason },
          }),
        );
        await appendToOutbox(manager, events);
      }
      return { recorded: fresh.length, alreadyListed: command.entries.length - fresh.length };
    });
  }
}
