import type { EventEnvelope } from '../envelope.js';

/** A support agent asked to resend the account's held-back mail since `since`. */
export type ResendRequested = EventEnvelope<
  'ResendRequested',
  {
    readonly resendId: string;
    readonly since: string;
    readonly dryRun: boolean;
  }
>;
