import type { EventEnvelope } from '../envelope.js';
import type { SuppressionList } from './message.events.js';

export type SuppressionSource = 'bounce' | 'unsubscribe' | 'admin' | 'import';

/** An address joined one of the account's suppression lists. */
export type SuppressionAdded = EventEnvelope<
  'SuppressionAdded',
  {
    readonly address: string;
    readonly list: SuppressionList;
    readonly source: SuppressionSource;
    /** Why, e.g. the bounce diagnostic. */
    readonly reason: string;
  }
>;

/** An address left a suppression list; mail to it goes through again. */
export type SuppressionRemoved = EventEnvelope<
  'SuppressionRemoved',
  {
    readonly address: string;
    readonly list: SuppressionList;
    readonly source: 'admin' | 'import';
  }
>;
