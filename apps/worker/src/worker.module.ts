import { Module } from '@nestjs/common';
import { DeliverWhenQueuedReactor } from './delivery/deliver-when-queued.reactor.js';
import { DeliveryDispatcher } from './delivery/delivery-dispatcher.js';
import { DeliveryQueueRepository } from './delivery/delivery-queue.repository.js';
import { QueueWhenReceivedReactor } from './policy/queue-when-received.reactor.js';

/**
 * The worker: the policy stage and the delivery stage, each its own consumer group on the event
 * log. Needs the global runtime providers (config, logger, event log, spool, DataSource).
 */
@Module({
  providers: [
    QueueWhenReceivedReactor,
    DeliveryQueueRepository,
    DeliveryDispatcher,
    DeliverWhenQueuedReactor,
  ],
})
export class WorkerModule {}
