import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional, ValidateBy } from 'class-validator';
import { RESEND_STATUSES, type ResendStatus } from '@relay/persistence';

/**
 * Request and response bodies of POST /v1/accounts/:id/resends and GET /v1/resends/:id. As in
 * account.dto.ts, each property gets one applyDecorators(...) whose rules read, and run, top-down.
 */

/** A date-time with its time zone: a zone-less time would be read in the server's. */
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/i;

const isIsoDateTime = (value: unknown): boolean =>
  typeof value === 'string' && ISO_DATE_TIME.test(value) && !Number.isNaN(Date.parse(value));

export class RequestResendDto {
  @applyDecorators(
    ApiPropertyOptional({
      description:
        'Resend mail held back from this time on: an ISO 8601 date-time with a time zone, at most 72 hours ago. ' +
        'Default: 72 hours ago.',
      example: '2025-03-12T09:00:00Z',
    }),
    IsOptional(),
    ValidateBy({
      name: 'isIsoDateTime',
      validator: {
        validate: isIsoDateTime,
        defaultMessage: () => 'since must be an ISO 8601 date-time with a time zone (2025-03-12T09:00:00Z)',
      },
    }),
  )
  since?: string;

  @applyDecorators(
    ApiPropertyOptional({
      description: 'Only list what would be resent; nothing is resent.',
      default: false,
    }),
    IsOptional(),
    IsBoolean({ message: 'dryRun must be true or false' }),
  )
  dryRun?: boolean;
}

export class ResendLinksDto {
  @ApiProperty({ example: '/v1/resends/dab18976-36e3-435d-9d7c-125a9c25a991' }) self!: string;
}

export class ResendAcceptedDto {
  @ApiProperty({ format: 'uuid', description: 'The resend: GET /v1/resends/:id shows its progress.' })
  id!: string;
  @ApiProperty({ enum: RESEND_STATUSES, example: 'requested' }) status!: ResendStatus;
  @ApiProperty({ format: 'date-time', description: 'Mail held back from this time on is resent.' })
  since!: string;
  @ApiProperty({ type: ResendLinksDto }) links!: ResendLinksDto;
}

export class HeldMessageDto {
  @ApiProperty({ description: 'The relay’s message id.', example: '5f2a9c01e4b7d3a6' }) messageId!: string;
  @ApiProperty({ type: [String], description: 'The recipients that would be resent.' })
  recipients!: string[];
  @ApiProperty({ format: 'date-time', description: 'When the quota held them back (the QuotaExceeded).' })
  heldAt!: string;
}

export class ResendDryRunDto {
  @ApiProperty({ format: 'date-time', description: 'Mail held back from this time on would be resent.' })
  since!: string;
  @ApiProperty({
    type: [HeldMessageDto],
    description: 'Oldest first; a message held back twice (by a resend) appears once per hold.',
  })
  items!: HeldMessageDto[];
  @ApiProperty({ description: 'Recipients that would be resent, over all items.' }) total!: number;
}

export class ResendDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() accountId!: string;
  @ApiProperty({ format: 'date-time' }) since!: string;
  @ApiProperty({ format: 'date-time' }) requestedAt!: string;
  @ApiProperty({
    enum: RESEND_STATUSES,
    description:
      'requested: recorded, not started; running: resubmitting, or waiting for the outcomes; done: every ' +
      'resubmitted recipient has an outcome.',
  })
  status!: ResendStatus;
  @ApiProperty({
    description:
      'Recipients this resend hands back to the policy stage: those held back since `since`, less those ' +
      'delivered or resubmitted since. Known once running.',
  })
  total!: number;
  @ApiProperty({ description: 'Of total, handed back so far.' }) resubmitted!: number;
  @ApiProperty({ description: 'Resubmitted recipients the remote server accepted.' }) delivered!: number;
  @ApiProperty({ description: 'Resubmitted recipients held back again: still over quota.' })
  overQuotaAgain!: number;
  @ApiProperty({ description: 'Resubmitted recipients that bounced, or are on a suppression list now.' })
  failed!: number;
}
