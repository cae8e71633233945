import { Module } from '@nestjs/common';
import { BounceIntakeService } from './bounce-intake/bounce-intake.service.js';
import { DELIVERY_LOOKUP } from './bounce-intake/delivery-lookup.port.js';
import { DeliverWhenQueuedReactor } from './delivery/deliver-when-queued.reactor.js';
import { DeliveryDispatcher } from './delivery/delivery-dispatcher.js';
import { DeliveryQueueRepository } from './delivery/delivery-queue.repository.js';
import { QueueWhenReceivedReactor } from './policy/queue-when-received.reactor.js';

/**
 * The worker: the policy stage and the delivery stage, each its own consumer group on the event
 * log, and the bounce intake (the SMTP listener for asynchronous bounces to VERP addresses).
 * Needs the global runtime providers (config, logger, event log, spool, DataSource).
 */
@Module({
  providers: [
    QueueWhenReceivedReactor,
    DeliveryQueueRepository,
    DeliveryDispatcher,
    DeliverWhenQueuedReactor,
    { provide: DELIVERY_LOOKUP, useExisting: DeliveryQueueRepository },
    BounceIntakeService,
  ],
})
export class WorkerModule {}
