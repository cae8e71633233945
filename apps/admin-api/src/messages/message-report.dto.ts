import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, ValidateBy } from 'class-validator';
import {
  isMessageCursor,
  MESSAGE_STATUSES,
  RECIPIENT_STATUSES,
  type MessageStatus,
} from '@relay/persistence';
import { NextCursorField, PageCursorField, PageSizeField } from '../page.dto.js';

/**
 * Query and response bodies of the delivery reports: GET /v1/messages/:messageId and
 * GET /v1/accounts/:id/messages. The responses are what DeliveryReportsRepository returns.
 */

/** A date, or a date-time with its time zone: a zone-less time would be read in the server's. */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/i;

/** The date itself must exist too: 2025-02-30 matches the pattern but is no day. */
function isIsoTimestamp(value: unknown): boolean {
  if (typeof value !== 'string' || !ISO_8601.test(value)) return false;
  const time = Date.parse(value);
  if (Number.isNaN(time)) return false;
  const [year = NaN, month = NaN, day = NaN] = value.slice(0, 10).split('-').map(Number);
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

export class ListMessagesQueryDto {
  @applyDecorators(
    ApiPropertyOptional({
      description: 'Only messages whose overall status is this one.',
      enum: MESSAGE_STATUSES,
    }),
    IsOptional(),
    IsIn(MESSAGE_STATUSES, { message: `status must be one of: ${MESSAGE_STATUSES.join(', ')}` }),
  )
  status?: MessageStatus;

  @applyDecorators(
    ApiPropertyOptional({
      description:
        'Only messages received at or after this time: an ISO 8601 date-time with a zone, or a date (midnight UTC).',
      example: '2025-03-14T09:00:00Z',
    }),
    IsOptional(),
    ValidateBy({
      name: 'isIsoTimestamp',
      validator: {
        validate: isIsoTimestamp,
        defaultMessage: () =>
          'since must be an ISO 8601 date (2025-03-14) or date-time with a time zone (2025-03-14T09:00:00Z)',
      },
    }),
  )
  since?: string;

  @PageSizeField(200) limit?: number;

  @PageCursorField(
    'The nextCursor of the previous page (same status and since).',
    'isMessageCursor',
    isMessageCursor,
  )
  cursor?: string;
}

export class TimelineEntryDto {
  @ApiProperty({ format: 'date-time', description: 'When it happened (the event’s occurredAt).' })
  at!: string;
  @ApiProperty({
    description: 'The event type: MessageReceived, MessageQueued, MessageResubmitted, Deferred, ...',
    example: 'Deferred',
  })
  type!: string;
  @ApiProperty({ format: 'uuid', description: 'The event’s id in the log (and on Kafka).' })
  eventId!: string;
  @ApiPropertyOptional({
    description: 'Reply line of the remote server.',
    example: '451 4.7.1 Try again later',
  })
  reply?: string;
  @ApiPropertyOptional({ description: 'Host tried or that answered.', example: 'mx1.example.org' })
  mx?: string;
  @ApiPropertyOptional({ description: 'Delivery attempt, 1 for the first.' })
  attempt?: number;
  @ApiPropertyOptional({ format: 'date-time', description: 'Deferred: when the next attempt is due.' })
  nextAttemptAt?: string;
  @ApiPropertyOptional({ description: 'Bounced: RFC 3463 enhanced status code.', example: '5.1.1' })
  status?: string;
  @ApiPropertyOptional({ description: 'Bounced: the remote reply or DSN diagnostic.' })
  diagnostic?: string;
  @ApiPropertyOptional({ description: 'Bounced: smtp, dsn, expired or routing.', example: 'dsn' })
  source?: string;
  @ApiPropertyOptional({ description: 'Suppressed: the list the recipient is on.', example: 'bounce' })
  list?: string;
  @ApiPropertyOptional({ description: 'RelayDenied: why.', example: 'from-not-allowed' })
  reason?: string;
  @ApiPropertyOptional({ description: 'Queued or resubmitted by this resend.' })
  resendId?: string;
}

export class RecipientReportDto {
  @ApiProperty({ example: 'ada@example.org' }) recipient!: string;
  @ApiProperty({ enum: RECIPIENT_STATUSES }) status!: string;
  @ApiProperty({ description: 'Delivery attempts made so far.' }) attempts!: number;
  @ApiProperty({ type: String, nullable: true, description: 'Last remote reply or bounce diagnostic.' })
  lastReply!: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'Last host tried.' }) mx!: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'date-time', description: 'While deferred.' })
  nextAttemptAt!: string | null;
  @ApiProperty({ type: String, nullable: true, enum: ['hard', 'soft'] }) bounceClass!: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'Enhanced status code of the bounce.' })
  statusCode!: string | null;
  @ApiProperty({ type: [TimelineEntryDto], description: 'What happened to this recipient, oldest first.' })
  timeline!: TimelineEntryDto[];
}

const UNKNOWN = 'Null when the report never saw the event that carries it.';

export class MessageSummaryDto {
  @ApiProperty({ description: 'The relay’s message id (as in "250 2.0.0 Ok: queued as <id>").' })
  id!: string;
  @ApiProperty() accountId!: string;
  @ApiProperty({ type: String, nullable: true, description: `Envelope sender. ${UNKNOWN}` })
  mailFrom!: string | null;
  @ApiProperty({ type: String, nullable: true, description: `From header address. ${UNKNOWN}` })
  from!: string | null;
  @ApiProperty({ type: String, nullable: true }) subject!: string | null;
  @ApiProperty({ type: Number, nullable: true, description: 'Octets.' }) size!: number | null;
  @ApiProperty() recipientsCount!: number;
  @ApiProperty({
    enum: MESSAGE_STATUSES,
    description:
      'deferred or queued while any recipient is in flight; then delivered, partially-delivered, held (over quota), bounced, suppressed or denied.',
  })
  status!: string;
  @ApiProperty({ format: 'date-time' }) receivedAt!: string;
  @ApiProperty({ format: 'date-time', description: 'Time of the latest event about the message.' })
  updatedAt!: string;
}

export class MessageReportDto extends MessageSummaryDto {
  @ApiProperty({ type: [RecipientReportDto], description: 'By address.' })
  recipients!: RecipientReportDto[];
}

export class MessagePageDto {
  @ApiProperty({ type: [MessageSummaryDto], description: 'Newest first.' }) items!: MessageSummaryDto[];
  @NextCursorField() nextCursor!: string | null;
}
