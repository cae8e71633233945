import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { dkimKeySecret, RELAY_CONFIG, type RelayConfig } from '@relay/config';
import {
  AccountRenderSettingsRepository,
  AccountsRepository,
  SuppressionsRepository,
} from '@relay/persistence';
import { BounceIntakeService } from './bounce-intake/bounce-intake.service.js';
import { DELIVERY_LOOKUP } from './bounce-intake/delivery-lookup.port.js';
import { DeliverWhenQueuedReactor } from './delivery/deliver-when-queued.reactor.js';
import { DeliveryDispatcher } from './delivery/delivery-dispatcher.js';
import { DeliveryQueueRepository } from './delivery/delivery-queue.repository.js';
import { MessageRenderer } from './delivery/message-renderer.js';
import { RENDER_SETTINGS } from './delivery/render-settings.port.js';
import { NotificationMailer } from './notifier/notification-mailer.js';
import { NotificationsRepository } from './notifier/notifications.repository.js';
import { NotifySenderReactor } from './notifier/notify-sender.reactor.js';
import { PolicyStageRunner } from './policy/policy-stage.runner.js';
import { ResubmissionsRepository } from './resend/resubmissions.repository.js';
import { ResubmitHeldMailWhenResendRequestedReactor } from './resend/resubmit-held-mail-when-resend-requested.reactor.js';
import { SUPPRESSION_LOOKUP } from './policy/suppression-lookup.port.js';
import { SpoolSweeper } from './spool/spool-sweeper.js';
import { ListAddressWhenBouncedOrUnsubscribedReactor } from './suppression/list-address-when-bounced-or-unsubscribed.reactor.js';

/**
 * The worker: the policy stage and the delivery stage, each its own consumer group on the event
 * log, the bounce intake (the SMTP listener for asynchronous bounces to VERP addresses), and the
 * spool's retention sweep.
 * Needs the global runtime providers (config, logger, event log, spool, DataSource).
 */
@Module({
  providers: [
    SuppressionsRepository,
    { provide: SUPPRESSION_LOOKUP, useExisting: SuppressionsRepository },
    PolicyStageRunner,
    ListAddressWhenBouncedOrUnsubscribedReactor,
    DeliveryQueueRepository,
    {
      provide: RENDER_SETTINGS,
      inject: [DataSource, RELAY_CONFIG],
      useFactory: (dataSource: DataSource, config: RelayConfig) =>
        new AccountRenderSettingsRepository(dataSource, { dkimKeySecret: () => dkimKeySecret(config) }),
    },
    MessageRenderer,
    DeliveryDispatcher,
    DeliverWhenQueuedReactor,
    AccountsRepository,
    NotificationsRepository,
    NotificationMailer,
    NotifySenderReactor,
    ResubmissionsRepository,
    ResubmitHeldMailWhenResendRequestedReactor,
    { provide: DELIVERY_LOOKUP, useExisting: DeliveryQueueRepository },
    BounceIntakeService,
    SpoolSweeper,
  ],
})
export class WorkerModule {}
