import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { createEvent, RESEND_WINDOW_MS } from '@relay/domain';
import { EVENT_LOG, type EventLog } from '@relay/event-log';
import { appendToOutbox, findHeldMail, recordResend, type HeldMail } from '@relay/persistence';
import { lockAccount } from '../suppressions/add-suppressions.handler.js';

export interface RequestResendCommand {
  readonly accountId: string;
  /** Held mail from this time on; checked with resendWindowError first. */
  readonly since: Date;
  /** Now: held mail before this time. */
  readonly requestedAt: Date;
  readonly dryRun: boolean;
}

export type RequestResendResult =
  | { readonly outcome: 'no-account' }
  | { readonly outcome: 'dry-run'; readonly held: readonly HeldMail[] }
  | { readonly outcome: 'requested'; readonly resendId: string };

const WINDOW_HOURS = RESEND_WINDOW_MS / 3_600_000;

/** Why `since` cannot start a resend requested at `now`, or undefined when it can. */
export function resendWindowError(since: Date, now: Date): string | undefined {
  const earliest = new Date(now.getTime() - RESEND_WINDOW_MS);
  if (since < earliest) {
    return (
      `since is more than ${WINDOW_HOURS} hours ago: a resend reaches back at most ${WINDOW_HOURS} hours ` +
      `(the resend window), so since must be ${earliest.toISOString()} or later`
    );
  }
  if (since > now) return `since is in the future: it must be a time within the last ${WINDOW_HOURS} hours`;
  return undefined;
}

/** The default since of a resend requested at `now`: as far back as the window goes. */
export const defaultSince = (now: Date): Date => new Date(now.getTime() - RESEND_WINDOW_MS);

/**
 * Records a ResendRequested through the outbox, with the resends row in the same transaction
 * (the worker's resend reactor takes it from the log). A dry run records the request too, as the
 * audit fact that an agent looked, but no row, and lists what the worker would resend now.
 */
@Injectable()
export class RequestResendHandler {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(EVENT_LOG) private readonly eventLog: EventLog,
  ) {}

  async execute(command: RequestResendCommand): Promise<RequestResendResult> {
    const resendId = randomUUID();
    const recorded = await this.dataSource.transaction(async (manager) => {
      if (!(await lockAccount(manager, command.accountId))) return false;
      if (!command.dryRun) {
        await recordResend(manager, {
          id: resendId,
          accountId: command.accountId,
          since: command.since,
          requestedAt: command.requestedAt,
        });
      }
      await appendToOutbox(manager, [
        createEvent('ResendRequested', {
          accountId: command.accountId,
          occurredAt: command.requestedAt.toISOString(),
          data: { resendId, since: command.since.toISOString(), dryRun: command.dryRun },
        }),
      ]);
      return true;
    });
    if (!recorded) return { outcome: 'no-account' };
    if (!command.dryRun) return { outcome: 'requested', resendId };
    const held = await findHeldMail(this.eventLog, this.dataSource, {
      accountId: command.accountId,
      since: command.since,
      until: command.requestedAt,
    });
    return { outcome: 'dry-run', held };
  }
}
