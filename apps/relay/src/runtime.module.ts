import { type DynamicModule, Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { LOGGER, RELAY_CONFIG } from '@relay/config';
import { EVENT_LOG } from '@relay/event-log';
import { SPOOL } from '@relay/spool';
import type { Runtime } from './runtime.js';

/**
 * Hands the process-wide runtime (config, logger, event log, spool, database) to the role modules,
 * which depend only on the tokens. Each Nest application of the process imports it once; they all
 * share the runtime's instances, which the runtime closes after the applications.
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
        { provide: DataSource, useValue: runtime.dataSource },
      ],
      exports: [RELAY_CONFIG, LOGGER, EVENT_LOG, SPOOL, DataSource],
    };
  }
}
