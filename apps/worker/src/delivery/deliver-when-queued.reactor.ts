import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { MessageQueued } from '@relay/domain';
import { EVENT_LOG, type EventLog, type LoggedEvent, type Subscription } from '@relay/event-log';
import { DeliveryDispatcher } from './delivery-dispatcher.js';
import { DeliveryQueueRepository } from './delivery-queue.repository.js';

/**
 * The delivery stage's consumer (group `delivery`): puts the recipients of each MessageQueued on
 * the delivery queue and, while the dispatcher has room, leases them to this worker to deliver at
 * once; otherwise the dispatcher's poll picks them up. The queue's key (message, recipient) makes
 * a redelivered MessageQueued a no-op.
 */
@Injectable()
export class DeliverWhenQueuedReactor implements OnApplicationBootstrap, OnApplicationShutdown {
  private subscription?: Subscription;

  constructor(
    @Inject(EVENT_LOG) private readonly eventLog: EventLog,
    private readonly queue: DeliveryQueueRepository,
    private readonly dispatcher: DeliveryDispatcher,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.dispatcher.start();
    this.subscription = await this.eventLog.subscribe({
      group: 'delivery',
      types: ['MessageQueued'],
      handle: (batch) => this.handle(batch),
    });
  }

  /** Runs before the dispatcher's shutdown (Nest stops providers in reverse order of creation). */
  async onApplicationShutdown(): Promise<void> {
    await this.subscription?.stop();
  }

  private async handle(batch: readonly LoggedEvent[]): Promise<void> {
    const queued = batch.map((l) => l.event).filter((e): e is MessageQueued => e.type === 'MessageQueued');
    if (queued.length === 0) return;
    const owner = this.dispatcher.hasCapacity() ? this.dispatcher.workerId : undefined;
    const leased = await this.queue.enqueue(queued, owner);
    if (owner) this.dispatcher.submit(leased);
    else this.dispatcher.noteBacklog();
  }
}
