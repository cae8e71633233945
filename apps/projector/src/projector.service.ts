import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { LOGGER, type Logger } from '@relay/config';
import { EVENT_LOG, type EventLog } from '@relay/event-log';
import { type Projection, ProjectionRunner } from '@relay/persistence';

/** DI token of the projections this process keeps up to date (Projection[]). */
export const PROJECTIONS = Symbol('PROJECTIONS');

/** Starts one ProjectionRunner per projection at bootstrap and stops them at shutdown. */
@Injectable()
export class ProjectorService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly runners: ProjectionRunner[] = [];

  constructor(
    @Inject(PROJECTIONS) private readonly projections: readonly Projection[],
    @Inject(EVENT_LOG) private readonly eventLog: EventLog,
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    try {
      for (const projection of this.projections) {
        const runner = new ProjectionRunner({
          projection,
          log: this.eventLog,
          dataSource: this.dataSource,
          logger: this.logger.child({ component: 'projector', projection: projection.name }),
        });
        await runner.start();
        this.runners.push(runner);
      }
    } catch (error) {
      // A failed bootstrap gets no shutdown hooks: the runners already started must not linger.
      await this.onApplicationShutdown();
      throw error;
    }
  }

  /** Names of the consumer groups the runners read with (for the start-up summary and tests). */
  groups(): string[] {
    return this.runners.flatMap((runner) => (runner.group === undefined ? [] : [runner.group]));
  }

  /** Each runner lets its batch in hand commit (the runtime closes the DataSource after the apps). */
  async onApplicationShutdown(): Promise<void> {
    for (const runner of this.runners.splice(0).reverse()) await runner.stop();
  }
}
