import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { createEvent, type SuppressionList } from '@relay/domain';
import { appendToOutbox, type SuppressionEntry, SuppressionsRepository } from '@relay/persistence';
import { lockAccount } from './add-suppressions.handler.js';

export interface RemoveSuppressionCommand {
  readonly accountId: string;
  readonly list: SuppressionList;
  readonly address: string;
}

export type RemoveSuppressionResult =
  | { readonly outcome: 'no-account' }
  | { readonly outcome: 'not-listed' }
  | { readonly outcome: 'removed'; readonly entry: SuppressionEntry };

/**
 * Records SuppressionRemoved (source admin) for a listed address, through the outbox: durable when
 * this resolves; mail to the address goes through once the projector has applied it.
 */
@Injectable()
export class RemoveSuppressionHandler {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(SuppressionsRepository) private readonly suppressions: SuppressionsRepository,
  ) {}

  async execute(command: RemoveSuppressionCommand): Promise<RemoveSuppressionResult> {
    // Read before the transaction: inside it, a second connection per request could exhaust the pool.
    const entry = await this.suppressions.get(command.accountId, command.list, command.address);
    return this.dataSource.transaction(async (manager) => {
      if (!(await lockAccount(manager, command.accountId))) return { outcome: 'no-account' };
      if (!entry) return { outcome: 'not-listed' };
      await appendToOutbox(manager, [
        createEvent('SuppressionRemoved', {
          accountId: command.accountId,
          // As listed: the projector finds the row by its key either way.
          data: { address: entry.address, list: entry.list, source: 'admin' },
        }),
      ]);
      return { outcome: 'removed', entry };
    });
  }
}
