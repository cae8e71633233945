import { Module } from '@nestjs/common';
import { DeliveryReportProjector, type Projection, SuppressionsProjector } from '@relay/persistence';
import { QuotaUsageProjector } from '@relay/persistence';
import { ResendProgressProjector } from '@relay/persistence';
import { PROJECTIONS, ProjectorService } from './projector.service.js';

/**
 * The read-model projectors: each projection's runner consumes the event log as its own consumer
 * group and commits its rows with its log position. Needs the global runtime providers: DataSource,
 * EVENT_LOG and LOGGER.
 */
@Module({
  providers: [
    {
      provide: PROJECTIONS,
      useValue: [
        new DeliveryReportProjector(),
        new SuppressionsProjector(),
        new QuotaUsageProjector(),
        new ResendProgressProjector(),
      ] satisfies Projection[],
    },
    ProjectorService,
  ],
  exports: [ProjectorService],
})
export class ProjectorModule {}
