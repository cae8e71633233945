import type { EventEnvelope } from '../envelope.js';

export interface Plan {
  /** Null means unlimited. */
  readonly monthlyMessageLimit: number | null;
  readonly monthlyByteLimit: number | null;
  readonly overageAllowed: boolean;
}

/** An account was created with, or changed to, a plan; the next quota decision uses it. */
export type AccountPlanChanged = EventEnvelope<
  'AccountPlanChanged',
  Plan & {
    /** The plan before the change; absent when the account was created. */
    readonly previous?: Plan;
  }
>;
