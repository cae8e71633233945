import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, Matches } from 'class-validator';

/** Query and response of GET /v1/accounts/:id/usage (what QuotaUsageRepository.usage returns). */

/** A calendar month, as the events' `period` is written. */
const PERIOD = /^\d{4}-(0[1-9]|1[0-2])$/;

export class UsageQueryDto {
  @applyDecorators(
    ApiPropertyOptional({
      description: 'Calendar month (UTC) as YYYY-MM; the current month when absent.',
      example: '2025-03',
      pattern: PERIOD.source,
    }),
    IsOptional(),
    Matches(PERIOD, { message: 'period must be a month as YYYY-MM, e.g. 2025-03' }),
  )
  period?: string;
}

export class UsageAmountsDto {
  @ApiProperty({ description: 'Messages: each queued recipient counts one.' }) messages!: number;
  @ApiProperty({ description: 'Octets: each queued recipient counts the message’s size.' }) bytes!: number;
}

export class UsageLimitsDto {
  @ApiProperty({ type: Number, nullable: true, description: 'Monthly message limit; null = unlimited.' })
  messages!: number | null;
  @ApiProperty({ type: Number, nullable: true, description: 'Monthly byte limit; null = unlimited.' })
  bytes!: number | null;
}

export class UsageDto extends UsageAmountsDto {
  @ApiProperty({ example: '2025-03', description: 'Calendar month (UTC).' }) period!: string;
  @ApiProperty({
    type: UsageLimitsDto,
    description:
      'The account’s limits now (after any plan change), not those in force when the mail was queued.',
  })
  limits!: UsageLimitsDto;
  @ApiProperty({ description: 'Mail past a limit is still delivered, and counted as overage.' })
  overageAllowed!: boolean;
  @ApiProperty({
    type: UsageAmountsDto,
    description: 'What was used past each limit: max(0, used - limit); 0 for an unlimited one.',
  })
  overage!: UsageAmountsDto;
}
