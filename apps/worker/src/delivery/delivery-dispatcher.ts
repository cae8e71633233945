import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  counter,
  gauge,
  histogram,
  LOGGER,
  RELAY_CONFIG,
  type Logger,
  type RelayConfig,
} from '@relay/config';
import {
  decideOutcome,
  MxRouter,
  OutboundPool,
  sendTransaction,
  verpReturnPath,
  type AttemptContext,
  type RecipientOutcome,
  type RecipientResult,
  type RetryPolicy,
} from '@relay/delivery';
import { SPOOL, SpoolBodyNotFoundError, type Spool } from '@relay/spool';
import { DeliveryQueueRepository, type QueuedRecipient } from './delivery-queue.repository.js';
import { MessageRenderer } from './message-renderer.js';

const attemptsTotal = counter(
  'relay_delivery_attempts_total',
  'Delivery attempts per recipient, by outcome.',
  ['outcome'],
);
const bouncesTotal = counter('relay_delivery_bounces_total', 'Bounced recipients by class and category.', [
  'class',
  'category',
]);
const queueDepth = gauge('relay_delivery_queue_depth', 'Recipients waiting for delivery (pending rows).');
const deliveredLatency = histogram(
  'relay_delivery_accept_to_delivered_seconds',
  'From acceptance at the ingress to the remote 250.',
  [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
);

/** Recipients of one message at one domain: one SMTP transaction. */
interface DeliveryTask {
  readonly messageId: string;
  readonly domain: string;
  readonly recipients: QueuedRecipient[];
}

const POLL_MS = 1000;
const QUEUE_DEPTH_EVERY_MS = 10_000;

/**
 * Runs delivery attempts: groups leased recipients into one transaction per message and domain,
 * keeps at most DELIVERY_CONCURRENCY transactions in flight, and polls the queue for recipients
 * that are due again (retries) or were left by a worker that died (expired lease). Each attempt's
 * outcome is written with its events in one transaction.
 */
@Injectable()
export class DeliveryDispatcher implements OnApplicationShutdown {
  readonly workerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly waiting: DeliveryTask[] = [];
  private readonly running = new Set<Promise<void>>();
  private readonly router: MxRouter;
  private readonly pool: OutboundPool;
  private readonly policy: RetryPolicy;
  private readonly bounceDomain: string;
  private pollTimer?: NodeJS.Timeout;
  private depthTimer?: NodeJS.Timeout;
  private polling = false;
  /** Recipients were queued for any worker to claim (no room here then): claim them as soon as there is. */
  private backlog = false;
  private stopped = false;

  constructor(
    @Inject(RELAY_CONFIG) private readonly config: RelayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(SPOOL) private readonly spool: Spool,
    private readonly queue: DeliveryQueueRepository,
    private readonly renderer: MessageRenderer,
  ) {
    this.router = new MxRouter(config.deliverySmartHost ? { smartHost: config.deliverySmartHost } : {});
    this.pool = new OutboundPool({ name: config.hostname, perHost: config.perHostConcurrency });
    this.policy = { schedule: config.retrySchedule, maxAgeMs: config.maxDeliveryAge };
    this.bounceDomain = config.bounceDomain ?? config.hostname;
  }

  /** Starts polling for due recipients. */
  start(): void {
    this.pollTimer = setInterval(() => void this.poll(), POLL_MS);
    this.depthTimer = setInterval(() => void this.measureDepth(), QUEUE_DEPTH_EVERY_MS);
    void this.poll();
  }

  /** Room for more work right now: the hot path leases new recipients only while there is. */
  hasCapacity(): boolean {
    return !this.stopped && this.waiting.length < this.config.deliveryConcurrency;
  }

  /**
   * The consumer queued recipients without leasing them (no room here then). Without this they
   * would wait for the next timed poll, up to POLL_MS, with the dispatcher idle before it.
   */
  noteBacklog(): void {
    this.backlog = true;
    this.pump();
  }

  submit(recipients: readonly QueuedRecipient[]): void {
    const tasks = new Map<string, DeliveryTask>();
    for (const r of recipients) {
      const key = `${r.messageId}\u0000${r.domain}`;
      const task = tasks.get(key) ?? { messageId: r.messageId, domain: r.domain, recipients: [] };
      task.recipients.push(r);
      tasks.set(key, task);
    }
    this.waiting.push(...tasks.values());
    this.pump();
  }

  /** Stops taking work, lets attempts in flight finish, and hands back what was not started. */
  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearInterval(this.depthTimer);
    const unstarted = this.waiting.splice(0).flatMap((t) => t.recipients);
    await Promise.allSettled([...this.running]);
    await this.queue.release(this.workerId, unstarted).catch((error: unknown) => {
      // Their leases expire by themselves; another worker takes them then.
      this.logger.warn('could not release leases', { error, count: unstarted.length });
    });
    this.pool.close();
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.config.deliveryConcurrency) {
      const task = this.waiting.shift();
      if (!task) break;
      const run = this.attempt(task).finally(() => {
        this.running.delete(run);
        this.pump();
      });
      this.running.add(run);
    }
    // Below half the waiting room, claim the backlog at once (a claim of at least half the room,
    // not one row per finished attempt): the dispatcher never idles while queued mail waits.
    if (this.backlog && this.waiting.length < this.config.deliveryConcurrency / 2) void this.poll();
  }

  private async poll(): Promise<void> {
    if (this.polling || this.stopped) return;
    const room = this.config.deliveryConcurrency * 2 - this.waiting.length - this.running.size;
    if (room <= 0) return;
    this.polling = true;
    const limit = Math.min(room, 500);
    this.backlog = false;
    try {
      const due = await this.queue.claimDue(this.workerId, limit);
      // A full claim may have left more behind.
      if (due.length === limit) this.backlog = true;
      if (due.length > 0) this.submit(due);
    } catch (error) {
      this.backlog = true;
      this.logger.warn('polling the delivery queue failed', { error });
    } finally {
      this.polling = false;
    }
  }

  private async measureDepth(): Promise<void> {
    queueDepth.set(await this.queue.pendingCount().catch(() => 0));
  }

  private async attempt(task: DeliveryTask): Promise<void> {
    const first = task.recipients[0];
    if (!first) return;
    const context: AttemptContext = {
      messageId: task.messageId,
      accountId: first.accountId,
      receivedAt: first.receivedAt,
      previousAttempts: first.attempts,
      now: new Date(),
    };
    let outcomes: RecipientOutcome[];
    try {
      outcomes = await this.deliver(task, first, context);
    } catch (error) {
      // An attempt that could not even run (spool or database down) is retried after its lease.
      this.logger.error('delivery attempt failed to run', {
        messageId: task.messageId,
        domain: task.domain,
        error,
      });
      return;
    }
    try {
      await this.queue.recordOutcomes(task.messageId, outcomes);
    } catch (error) {
      this.logger.error('could not record delivery outcomes', { messageId: task.messageId, error });
      return;
    }
    for (const outcome of outcomes) this.observe(outcome, task);
  }

  private async deliver(
    task: DeliveryTask,
    first: QueuedRecipient,
    context: AttemptContext,
  ): Promise<RecipientOutcome[]> {
    const recipients = task.recipients.map((r) => r.recipient);
    // Outcomes are dated when they are known (the remote reply), not when the attempt began.
    const contextFor = (r: QueuedRecipient): AttemptContext => ({
      ...context,
      previousAttempts: r.attempts,
      now: new Date(),
    });
    const route = await this.router.route(task.domain);
    if (route.kind !== 'hosts') {
      const failure =
        route.kind === 'undeliverable'
          ? {
              kind: 'permanent' as const,
              reason: route.reason,
              enhancedCode: route.enhancedCode,
              category: 'routing',
            }
          : { kind: 'temporary' as const, reason: route.reason };
      return task.recipients.map((r) =>
        decideOutcome({ recipient: r.recipient, failure }, contextFor(r), this.policy),
      );
    }
    let results: RecipientResult[];
    try {
      const plan = await this.renderer.plan(first);
      const send = (to: readonly string[]): Promise<RecipientResult[]> =>
        sendTransaction(this.pool, route.hosts, {
          mailFrom:
            first.returnPath ??
            verpReturnPath(task.messageId, this.bounceDomain, to.length === 1 ? to[0] : undefined),
          recipients: to,
          size: first.size,
          smtpUtf8: first.smtpUtf8,
          eightBitMime: first.eightBitMime,
          openBody: () => plan.open(to[0] ?? first.recipient),
        });
      if (plan.perRecipient) {
        // Each copy carries its recipient's tokens: one transaction each, over the pooled connection.
        results = [];
        for (const recipient of recipients) results.push(...(await send([recipient])));
      } else {
        results = await send(recipients);
      }
    } catch (error) {
      if (!(error instanceof SpoolBodyNotFoundError)) throw error;
      const failure = {
        kind: 'permanent' as const,
        reason: 'message body no longer in the spool',
        enhancedCode: '5.3.0',
        category: 'spool',
      };
      return task.recipients.map((r) =>
        decideOutcome({ recipient: r.recipient, failure }, contextFor(r), this.policy),
      );
    }
    const byRecipient = new Map(task.recipients.map((r) => [r.recipient, r]));
    return results.map((result) =>
      decideOutcome(result, contextFor(byRecipient.get(result.recipient) ?? first), this.policy),
    );
  }

  private observe(outcome: RecipientOutcome, task: DeliveryTask): void {
    const event = outcome.event;
    const fields = { messageId: task.messageId, accountId: event.accountId, domain: task.domain };
    switch (event.type) {
      case 'Delivered':
        attemptsTotal.inc({ outcome: 'delivered' });
        deliveredLatency.observe(event.data.latencyMs / 1000);
        this.logger.info('delivered', {
          ...fields,
          recipient: event.data.recipient,
          mx: event.data.mx,
          attempt: event.data.attempt,
          reply: event.data.remoteReply,
          latencyMs: event.data.latencyMs,
        });
        break;
      case 'Deferred':
        attemptsTotal.inc({ outcome: 'deferred' });
        this.logger.info('deferred', {
          ...fields,
          recipient: event.data.recipient,
          attempt: event.data.attempt,
          reply: event.data.remoteReply,
          nextAttemptAt: event.data.nextAttemptAt,
        });
        break;
      case 'Bounced':
        attemptsTotal.inc({ outcome: 'bounced' });
        bouncesTotal.inc({ class: event.data.bounceClass, category: event.data.category });
        this.logger.info('bounced', {
          ...fields,
          recipient: event.data.recipient,
          attempt: event.data.attempt,
          status: event.data.status,
          category: event.data.category,
          diagnostic: event.data.diagnostic,
        });
        break;
      default:
        break;
    }
  }
}
