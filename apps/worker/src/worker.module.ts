import { Module } from '@nestjs/common';
import { BounceIntakeService } from './bounce-intake/bounce-intake.service.js';
import { DELIVERY_LOOKUP } from './bounce-intake/delivery-lookup.port.js';
import { DeliverWhenQueuedReactor } from './delivery/deliver-when-queued.reactor.js';
import { DeliveryDispatcher } from './delivery/delivery-dispatcher.js';
import { DeliveryQueueRepository } from './delivery/delivery-queue.repository.js';
import { ApplyPolicyWhenReceivedReactor } from './policy/apply-policy-when-received.reactor.js';
import { SqlSuppressionLookup } from './policy/sql-suppression-lookup.js';
import { SUPPRESSION_LOOKUP } from './policy/suppression-lookup.port.js';
import { ListAddressWhenBouncedOrUnsubscribedReactor } from './suppression/list-address-when-bounced-or-unsubscribed.reactor.js';

/**
 * The worker: the policy stage and the delivery stage, each its own consumer group on the event
 * log, and the bounce intake (the SMTP listener for asynchronous bounces to VERP addresses).
 * Needs the global runtime providers (config, logger, event log, spool, DataSource).
 */
@Module({
  providers: [
    { provide: SUPPRESSION_LOOKUP, useClass: SqlSuppressionLookup },
    ApplyPolicyWhenReceivedReactor,
    ListAddressWhenBouncedOrUnsubscribedReactor,
    DeliveryQueueRepository,
    DeliveryDispatcher,
    DeliverWhenQueuedReactor,
    { provide: DELIVERY_LOOKUP, useExisting: DeliveryQueueRepository },
    BounceIntakeService,
  ],
})
export class WorkerModule {}
