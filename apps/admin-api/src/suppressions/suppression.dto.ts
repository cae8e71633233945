import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayNotEmpty,
  IsArray,
  IsDefined,
  IsIn,
  IsOptional,
  IsString,
  MaxLength,
  ValidateBy,
  ValidateIf,
} from 'class-validator';
import type { SuppressionList } from '@relay/domain';
import { isSuppressionCursor, SUPPRESSION_LISTS } from '@relay/persistence';
import { NextCursorField, PageCursorField, PageSizeField } from '../page.dto.js';
import { isListableAddress, MAX_REASON_LENGTH } from './suppression-import.js';

/**
 * Query, request and response bodies of /v1/accounts/:id/suppressions. As in account.dto.ts, each
 * property gets one applyDecorators(...) whose rules read, and run, top-down.
 */

/** Addresses one POST may add; a larger list goes through the CSV import. */
export const MAX_ADDRESSES_PER_REQUEST = 10_000;
/** How many invalid addresses a 400 names. */
const NAMED_INVALID = 20;

const LIST_MESSAGE = `list must be one of: ${SUPPRESSION_LISTS.join(', ')}`;

const ADDRESS_RULE =
  'An address compares case-insensitively in its domain and exactly as given in its local part.';

const trimmed = (): PropertyDecorator =>
  Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value));

const trimmedEach = (): PropertyDecorator =>
  Transform(({ value }: { value: unknown }) =>
    Array.isArray(value) ? value.map((v: unknown) => (typeof v === 'string' ? v.trim() : v)) : value,
  );

const listField = (required: boolean, description: string): PropertyDecorator =>
  applyDecorators(
    ApiProperty({ enum: SUPPRESSION_LISTS, required, description }),
    required ? IsDefined({ message: 'list is required' }) : IsOptional(),
    IsIn(SUPPRESSION_LISTS, { message: LIST_MESSAGE }),
  );

export class SearchSuppressionsQueryDto {
  @listField(false, 'Only this list; both when absent.')
  list?: SuppressionList;

  @applyDecorators(
    ApiPropertyOptional({
      description: 'Only addresses containing this text, in any case.',
      example: 'example.org',
    }),
    IsOptional(),
    IsString(),
    MaxLength(254),
  )
  q?: string;

  @PageSizeField(500) limit?: number;

  @PageCursorField(
    'The nextCursor of the previous page (same list and q).',
    'isSuppressionCursor',
    isSuppressionCursor,
  )
  cursor?: string;
}

export class SuppressionListQueryDto {
  @listField(false, 'Only this list; both when absent.')
  list?: SuppressionList;
}

export class ImportSuppressionsQueryDto {
  @listField(
    false,
    'The list every row goes to (a list column is then ignored); without it each row names its list.',
  )
  list?: SuppressionList;
}

export class AddSuppressionsDto {
  @listField(true, 'The list to add to.')
  list!: SuppressionList;

  @applyDecorators(
    ApiPropertyOptional({
      description: `One address to add; or give addresses. ${ADDRESS_RULE}`,
      example: 'ada@example.org',
    }),
    ValidateIf((body: AddSuppressionsDto) => body.addresses === undefined || body.address !== undefined),
    IsDefined({ message: 'address or addresses is required' }),
    trimmed(),
    IsString(),
    ValidateBy({
      name: 'isListableAddress',
      validator: {
        validate: (value: unknown) => typeof value === 'string' && isListableAddress(value),
        defaultMessage: (args) => `address is not a valid email address: ${JSON.stringify(args?.value)}`,
      },
    }),
  )
  address?: string;

  @applyDecorators(
    ApiPropertyOptional({
      description: `Up to ${MAX_ADDRESSES_PER_REQUEST} addresses to add; or give address. ${ADDRESS_RULE}`,
      type: [String],
      example: ['ada@example.org', 'grace@example.net'],
    }),
    ValidateIf((body: AddSuppressionsDto) => body.addresses !== undefined),
    ValidateBy({
      name: 'notWithAddress',
      validator: {
        validate: (_: unknown, args) => (args?.object as AddSuppressionsDto).address === undefined,
        defaultMessage: () => 'give either address or addresses, not both',
      },
    }),
    trimmedEach(),
    IsArray(),
    ArrayNotEmpty({ message: 'addresses must list at least one address' }),
    ArrayMaxSize(MAX_ADDRESSES_PER_REQUEST, {
      message: `addresses must list at most ${MAX_ADDRESSES_PER_REQUEST} addresses; import a CSV for more`,
    }),
    IsString({ each: true }),
    ValidateBy({
      name: 'areListableAddresses',
      validator: {
        validate: (value: unknown) =>
          Array.isArray(value) && value.every((v) => isListableAddress(String(v))),
        defaultMessage: (args) => {
          const invalid = ((args?.value ?? []) as string[]).filter((v) => !isListableAddress(v));
          const named = invalid.slice(0, NAMED_INVALID).map((v) => JSON.stringify(v));
          const more = invalid.length > NAMED_INVALID ? ` and ${invalid.length - NAMED_INVALID} more` : '';
          return `addresses has ${invalid.length} invalid email address${invalid.length === 1 ? '' : 'es'}: ${named.join(', ')}${more}`;
        },
      },
    }),
  )
  addresses?: string[];

  @applyDecorators(
    ApiPropertyOptional({
      description: 'Why, for support agents; "Added by a support agent" when absent.',
      maxLength: MAX_REASON_LENGTH,
      example: 'Customer asked by phone to receive no more mail',
    }),
    IsOptional(),
    IsString(),
    MaxLength(MAX_REASON_LENGTH),
  )
  reason?: string;
}

export class SuppressionDto {
  @ApiProperty({ description: 'As it was first listed.', example: 'grace@example.net' }) address!: string;
  @ApiProperty({ enum: SUPPRESSION_LISTS }) list!: string;
  @ApiProperty({
    description: 'Why it was listed; for a bounce, its diagnostic.',
    example: '550 5.1.1 <grace@example.net>: user unknown',
  })
  reason!: string;
  @ApiProperty({
    enum: ['bounce', 'unsubscribe', 'admin', 'import'],
    description: 'What listed it: a hard bounce, the recipient’s unsubscribe, a support agent, or an import.',
  })
  source!: string;
  @ApiProperty({ format: 'date-time', description: 'When it was listed.' }) createdAt!: string;
}

export class SuppressionPageDto {
  @ApiProperty({ type: [SuppressionDto], description: 'Newest first.' }) items!: SuppressionDto[];
  @NextCursorField() nextCursor!: string | null;
}

export class SuppressionsAddedDto {
  @ApiProperty({ description: 'Addresses recorded as added (one SuppressionAdded event each).' })
  recorded!: number;
  @ApiProperty({ description: 'Addresses left out: already on the list, or repeated in the request.' })
  skipped!: number;
}

export class SuppressionRemovedDto {
  @ApiProperty({ type: SuppressionDto, description: 'The listing recorded as removed.' })
  removed!: SuppressionDto;
}

export class InvalidRowDto {
  @ApiProperty({ description: 'Line of the file (1-based) the row starts on.' }) line!: number;
  @ApiProperty({ description: 'The address cell as given.' }) value!: string;
  @ApiProperty({ example: 'not a valid email address' }) error!: string;
}

export class SuppressionsImportedDto {
  @ApiProperty({ description: 'Rows recorded as added (one SuppressionAdded event each, source import).' })
  imported!: number;
  @ApiProperty({ description: 'Valid rows left out: already on the list, or repeating an earlier row.' })
  skipped!: number;
  @ApiProperty({ type: [InvalidRowDto], description: 'The first 100 invalid rows, by line.' })
  invalid!: InvalidRowDto[];
  @ApiProperty({ description: 'All invalid rows, including those beyond the first 100.' })
  invalidCount!: number;
}
