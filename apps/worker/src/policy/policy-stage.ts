import type { EntityManager } from 'typeorm';
import type { Logger } from '@relay/config';
import {
  decidePolicy,
  periodOf,
  type Plan,
  type PolicyInput,
  type RelayEvent,
  type SuppressionList,
  type Usage,
} from '@relay/domain';
import { appendToOutbox, prepared, type Projection } from '@relay/persistence';
import type { SuppressionLookup } from './suppression-lookup.port.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const PLAN_SQL = prepared(
  `SELECT monthly_message_limit, monthly_byte_limit, overage_allowed FROM accounts WHERE id = $1::uuid`,
);
/** Creates the month's row if need be and locks it (ON CONFLICT DO UPDATE locks, like FOR UPDATE). */
const LOCK_USAGE_SQL = prepared(`
  INSERT INTO policy_usage AS u (account_id, period) VALUES ($1, $2)
  ON CONFLICT (account_id, period) DO UPDATE SET messages = u.messages
  RETURNING messages, bytes`);
const STORE_USAGE_SQL = prepared(
  `UPDATE policy_usage SET messages = $3, bytes = $4 WHERE account_id = $1 AND period = $2`,
);

interface PlanRow {
  monthly_message_limit: number | null;
  monthly_byte_limit: string | null;
  overage_allowed: boolean;
}

/**
 * The policy stage, run like a projection (consumer group `projection-policy`): for each batch of
 * MessageReceived and MessageResubmitted, in ONE transaction with the stage's log position, it
 * reads the account's plan and the month's usage (row locked), decides (decidePolicy: suppression
 * lists, then quota), writes the new usage and puts the decided events in the outbox. So every
 * recipient is decided exactly once whatever the log redelivers or wherever a process dies, and
 * with a limit of N exactly N recipients are queued. The log is partitioned by account, so one
 * account's decisions are never made by two processes at once; the row lock makes sure of it
 * across a rebalance.
 */
export class PolicyStage implements Projection<'MessageReceived' | 'MessageResubmitted'> {
  readonly name = 'policy';
  readonly eventTypes = ['MessageReceived', 'MessageResubmitted'] as const;

  constructor(
    private readonly suppressions: SuppressionLookup,
    private readonly logger: Logger,
  ) {}

  async apply(event: PolicyInput, manager: EntityManager): Promise<void> {
    await this.applyBatch([event], manager);
  }

  async applyBatch(inputs: readonly PolicyInput[], manager: EntityManager): Promise<void> {
    const now = new Date();
    const period = periodOf(now);
    const plans = new Map<string, Plan | undefined>();
    const usages = new Map<string, Usage>();
    const decided: RelayEvent[] = [];
    const listed = await this.listedByAccount(inputs);
    for (const input of inputs) {
      const accountId = input.accountId;
      if (!accountId) continue;
      if (!plans.has(accountId)) plans.set(accountId, await this.planOf(manager, accountId));
      const usage = usages.get(accountId) ?? (await this.lockUsage(manager, accountId, period));
      const decision = decidePolicy(input, {
        listed: listed.get(accountId) ?? new Map(),
        now,
        plan: plans.get(accountId),
        usage,
      });
      usages.set(accountId, decision.usage);
      decided.push(...decision.events);
      this.log(input, decision.events);
    }
    for (const [accountId, usage] of usages) {
      await manager.query(STORE_USAGE_SQL, [accountId, period, usage.messages, usage.bytes]);
    }
    await appendToOutbox(manager, decided);
  }

  /** One suppression lookup per account for the whole batch (a query per message made this stage the bottleneck). */
  private async listedByAccount(
    inputs: readonly PolicyInput[],
  ): Promise<Map<string, Map<string, SuppressionList>>> {
    const recipients = new Map<string, Set<string>>();
    for (const input of inputs) {
      if (!input.accountId) continue;
      const set = recipients.get(input.accountId) ?? new Set<string>();
      for (const recipient of input.data.recipients) set.add(recipient);
      recipients.set(input.accountId, set);
    }
    const listed = new Map<string, Map<string, SuppressionList>>();
    for (const [accountId, set] of recipients) {
      listed.set(accountId, await this.suppressions.isListed(accountId, [...set]));
    }
    return listed;
  }

  /** Decisions are facts in the log: there is nothing to rebuild. */
  async reset(): Promise<void> {
    throw new Error('the policy stage keeps decisions, not a read model: it cannot be rebuilt');
  }

  private async planOf(manager: EntityManager, accountId: string): Promise<Plan | undefined> {
    if (!UUID.test(accountId)) return undefined;
    const rows: PlanRow[] = await manager.query(PLAN_SQL, [accountId]);
    const row = rows[0];
    if (!row) return undefined;
    return {
      monthlyMessageLimit: row.monthly_message_limit,
      monthlyByteLimit: row.monthly_byte_limit === null ? null : Number(row.monthly_byte_limit),
      overageAllowed: row.overage_allowed,
    };
  }

  /** The month's usage, its row locked until the transaction ends. */
  private async lockUsage(manager: EntityManager, accountId: string, period: string): Promise<Usage> {
    const rows: { messages: string; bytes: string }[] = await manager.query(LOCK_USAGE_SQL, [
      accountId,
      period,
    ]);
    return { messages: Number(rows[0]?.messages ?? 0), bytes: Number(rows[0]?.bytes ?? 0) };
  }

  /** One line per decision, with the message, the account and the reason. */
  private log(input: PolicyInput, events: readonly RelayEvent[]): void {
    const fields = { messageId: input.messageId, accountId: input.accountId };
    for (const event of events) {
      switch (event.type) {
        case 'Suppressed':
          this.logger.info('suppressed', {
            ...fields,
            recipient: event.data.recipient,
            reason: `on the ${event.data.list} list`,
          });
          break;
        case 'QuotaExceeded':
          this.logger.info('held over quota', {
            ...fields,
            recipients: event.data.recipients.length,
            reason: `usage ${event.data.usage.messages} messages, ${event.data.usage.bytes} bytes in ${event.data.period}`,
          });
          break;
        case 'MessageQueued':
          this.logger.info('queued', {
            ...fields,
            recipients: event.data.recipients.length,
            reason: 'no guard step applies',
          });
          break;
        default:
          break;
      }
    }
  }
}
