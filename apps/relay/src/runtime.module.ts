import { type DynamicModule, Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { LOGGER, RELAY_CONFIG } from '@relay/config';
import { EVENT_LOG } from '@relay/event-log';
import { ACCOUNT_ENTITIES, createDataSource } from '@relay/persistence';
import { SPOOL } from '@relay/spool';
import type { Runtime } from './runtime.js';

/** Every TypeORM entity of the product, for the shared DataSource. */
const ENTITIES = [...ACCOUNT_ENTITIES];

/** Each Nest application owns its DataSource's pool and closes it when the application closes. */
@Injectable()
class DataSourceCloser implements OnApplicationShutdown {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}

/**
 * Hands the process-wide runtime (config, logger, event log, spool, database) to the role modules,
 * which depend only on the tokens. Each Nest application of the process imports it once.
 */
@Module({})
export class RuntimeModule {
  static forRoot(runtime: Runtime): DynamicModule {
    return {
      module: RuntimeModule,
      global: true,
      providers: [
        { provide: RELAY_CONFIG, useValue: runtime.config },
        { provide: LOGGER, useValue: runtime.logger },
        { provide: EVENT_LOG, useValue: runtime.eventLog },
        { provide: SPOOL, useValue: runtime.spool },
        {
          provide: DataSource,
          useFactory: async () =>
            createDataSource({
              url: runtime.databaseUrl,
              entities: ENTITIES,
              applicationName: 'relay',
            }).initialize(),
        },
      ],
      exports: [RELAY_CONFIG, LOGGER, EVENT_LOG, SPOOL, DataSource],
    };
  }
}
