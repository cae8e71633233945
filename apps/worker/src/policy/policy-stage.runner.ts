import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { LOGGER, type Logger } from '@relay/config';
import { EVENT_LOG, type EventLog } from '@relay/event-log';
import { ProjectionRunner } from '@relay/persistence';
import { PolicyStage } from './policy-stage.js';
import { SUPPRESSION_LOOKUP, type SuppressionLookup } from './suppression-lookup.port.js';

/** Runs the policy stage in this worker: joins its consumer group at bootstrap, leaves at shutdown. */
@Injectable()
export class PolicyStageRunner implements OnApplicationBootstrap, OnApplicationShutdown {
  private runner?: ProjectionRunner;

  constructor(
    @Inject(EVENT_LOG) private readonly eventLog: EventLog,
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(SUPPRESSION_LOOKUP) private readonly suppressions: SuppressionLookup,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const logger = this.logger.child({ component: 'policy' });
    this.runner = new ProjectionRunner({
      projection: new PolicyStage(this.suppressions, logger),
      log: this.eventLog,
      dataSource: this.dataSource,
      logger,
    });
    await this.runner.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.runner?.stop();
  }
}
