import { Module } from '@nestjs/common';
import { DeliveredAtRepository } from './delivered-at.repository.js';
import { trackingKeyProvider } from './tracking-key.provider.js';
import { TrackerController } from './tracker.controller.js';

/**
 * The public tracker (TRACKER_PORT, no authentication: the signed token is the authority): open
 * pixel, click redirect, unsubscribe. Needs RELAY_CONFIG, LOGGER, EVENT_LOG and the process-wide
 * DataSource (for the delivery time of a message, from the delivery report read model).
 */
@Module({
  controllers: [TrackerController],
  providers: [DeliveredAtRepository, trackingKeyProvider],
})
export class TrackerModule {}
