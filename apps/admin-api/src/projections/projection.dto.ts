import { ApiProperty } from '@nestjs/swagger';

/** Responses of /v1/projections/:name (see projection-status.ts). */

export class ProjectionPositionDto {
  @ApiProperty({ description: 'Log partition (always 0 on the Postgres log).' }) partition!: number;
  @ApiProperty({
    description:
      'Position of the last event applied in this partition, as the log writes it: Postgres ' +
      '"<transaction>:<position>", Kafka the offset, zero-padded. It grows as the projector catches up.',
    example: '00000000000000000812:00000000000000004711',
  })
  offset!: string;
  @ApiProperty({ format: 'date-time', description: 'When the projector last stored it.' })
  updatedAt!: string;
}

export class ProjectionStatusDto {
  @ApiProperty({ example: 'quota' }) name!: string;
  @ApiProperty({ description: 'How many times it was rebuilt; 0 before the first rebuild.' })
  generation!: number;
  @ApiProperty({
    description: 'The consumer group the projector of this generation reads the log with.',
    example: 'projection-quota-g2',
  })
  group!: string;
  @ApiProperty({ type: String, nullable: true, format: 'date-time', description: 'Of the last rebuild.' })
  rebuiltAt!: string | null;
  @ApiProperty({
    type: [ProjectionPositionDto],
    description: 'Per partition; empty right after a rebuild, until the replay applies its first events.',
  })
  positions!: ProjectionPositionDto[];
}

export class ProjectionRebuildDto {
  @ApiProperty({ example: 'quota' }) name!: string;
  @ApiProperty({ description: 'The new generation.', example: 2 }) generation!: number;
  @ApiProperty({ description: 'The consumer group that replays the log.', example: 'projection-quota-g2' })
  group!: string;
}
