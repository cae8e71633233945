import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { suppressionKey, type SuppressionList } from '@relay/domain';
import type { SuppressionLookup } from './suppression-lookup.port.js';

/** Interim SuppressionLookup over the suppressions table, until the read model's repository lands. */
@Injectable()
export class SqlSuppressionLookup implements SuppressionLookup {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async isListed(accountId: string, addresses: readonly string[]): Promise<Map<string, SuppressionList>> {
    const keys = new Map(addresses.map((a) => [suppressionKey(a), a]));
    const rows: { address_key: string; list: SuppressionList }[] = await this.dataSource.query(
      `SELECT address_key, list FROM suppressions WHERE account_id = $1 AND address_key = ANY($2) ORDER BY list`,
      [accountId, [...keys.keys()]],
    );
    const listed = new Map<string, SuppressionList>();
    for (const row of rows) {
      const address = keys.get(row.address_key);
      if (address && !listed.has(address)) listed.set(address, row.list);
    }
    return listed;
  }
}
