import type { SuppressionList } from '@relay/domain';

/** DI token of the SuppressionLookup port (bound to the suppression lists' read model). */
export const SUPPRESSION_LOOKUP = Symbol('SUPPRESSION_LOOKUP');

export interface SuppressionLookup {
  /** Which of `addresses` are on one of the account's lists (compared by suppressionKey). */
  isListed(accountId: string, addresses: readonly string[]): Promise<Map<string, SuppressionList>>;
}
