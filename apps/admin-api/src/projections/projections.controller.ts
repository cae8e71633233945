import {
  Controller,
  Get,
  HttpCode,
  HttpStatus,
  Inject,
  NotFoundException,
  Param,
  Post,
} from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import { LOGGER, type Logger } from '@relay/config';
import {
  consumerGroupOf,
  DeliveryReportProjector,
  type Projection,
  QuotaUsageProjector,
  rebuildProjection,
  SuppressionsProjector,
} from '@relay/persistence';
import { AdminAuth } from '../auth/admin-token.guard.js';
import { ProjectionRebuildDto, ProjectionStatusDto } from './projection.dto.js';
import { projectionStatus, type ProjectionStatus } from './projection-status.js';

/**
 * The read models an agent may rebuild. Only name and reset() are used here: the projector
 * processes (apps/projector) notice the new generation and replay the log.
 */
const PROJECTIONS: ReadonlyMap<string, Projection> = new Map(
  (
    [
      new QuotaUsageProjector(),
      new SuppressionsProjector(),
      new DeliveryReportProjector(),
    ] satisfies Projection[]
  ).map((projection) => [projection.name, projection]),
);

const NAMES = [...PROJECTIONS.keys()];

/** The read models' bookkeeping: where each projector is in the log, and rebuilding one. */
@ApiTags('projections')
@AdminAuth()
@Controller('v1/projections')
export class ProjectionsController {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @Get(':name')
  @ApiOperation({
    summary: 'The projection’s generation and, per log partition, the last position it applied.',
    description: 'After a rebuild, poll this: the positions reappear and grow as the replay catches up.',
  })
  @ApiParam({ name: 'name', enum: NAMES })
  @ApiOkResponse({ type: ProjectionStatusDto })
  @ApiNotFoundResponse({ description: 'No projection has this name.' })
  async get(@Param('name') name: string): Promise<ProjectionStatus> {
    return projectionStatus(this.dataSource, this.projection(name).name);
  }

  @Post(':name/rebuild')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({
    summary: 'Empty the read model and recompute it from the event log.',
    description:
      'Empties the read model, forgets its positions and moves it to a new generation, in one ' +
      'transaction; the projectors then replay the log from its start under a new consumer group ' +
      '(within seconds). Until the replay has caught up (GET /v1/projections/{name}), the read model ' +
      'shows only what it has replayed so far. On Kafka the replay starts at the oldest event the ' +
      'topic still retains.',
  })
  @ApiParam({ name: 'name', enum: NAMES })
  @ApiAcceptedResponse({ type: ProjectionRebuildDto })
  @ApiNotFoundResponse({ description: 'No projection has this name.' })
  async rebuild(@Param('name') name: string): Promise<ProjectionRebuildDto> {
    const projection = this.projection(name);
    const generation = await rebuildProjection(this.dataSource, projection);
    this.logger.info('projection rebuild requested', {
      projection: projection.name,
      generation,
      source: 'admin',
    });
    return { name: projection.name, generation, group: consumerGroupOf(projection.name, generation) };
  }

  private projection(name: string): Projection {
    const projection = PROJECTIONS.get(name);
    if (!projection) throw new NotFoundException(`No projection named ${name}; one of: ${NAMES.join(', ')}`);
    return projection;
  }
}
