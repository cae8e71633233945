import { ValidationPipe } from '@nestjs/common';

/**
 * Request bodies and queries are validated against their DTO classes: unknown fields are refused
 * (not silently dropped), and each invalid field gets one message that names it (its first
 * failing rule), in a 400 `{ statusCode, error, message: string[] }`.
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    stopAtFirstError: true,
    transform: true,
    transformOptions: { enableImplicitConversion: false },
  });
}
