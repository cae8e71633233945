import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, Min, ValidateBy } from 'class-validator';

/** The fields every paged list shares: ?limit= and ?cursor= in, nextCursor out. */

const CURSOR_MESSAGE = 'cursor must be the nextCursor of a previous page';

/** ?limit=: 1 to `maximum` rows, 50 when absent. */
export const PageSizeField = (maximum: number): PropertyDecorator =>
  applyDecorators(
    ApiPropertyOptional({ description: 'Page size.', default: 50, minimum: 1, maximum }),
    IsOptional(),
    Type(() => Number),
    IsInt({ message: 'limit must be a whole number' }),
    Min(1),
    Max(maximum),
  );

/** ?cursor=: a nextCursor `isCursor` accepts (named `name` among the validation rules). */
export const PageCursorField = (
  description: string,
  name: string,
  isCursor: (cursor: string) => boolean,
): PropertyDecorator =>
  applyDecorators(
    ApiPropertyOptional({ description }),
    IsOptional(),
    IsString(),
    ValidateBy({
      name,
      validator: {
        validate: (value: unknown) => typeof value === 'string' && isCursor(value),
        defaultMessage: () => CURSOR_MESSAGE,
      },
    }),
  );

export const NextCursorField = (): PropertyDecorator =>
  ApiProperty({
    type: String,
    nullable: true,
    description: 'Pass as ?cursor= for the next page; null on the last.',
  });
