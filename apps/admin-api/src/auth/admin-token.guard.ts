import { createHash, timingSafeEqual } from 'node:crypto';
import {
  applyDecorators,
  type CanActivate,
  type ExecutionContext,
  Inject,
  Injectable,
  UnauthorizedException,
  UseGuards,
} from '@nestjs/common';
import { ApiBearerAuth, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { Request, Response } from 'express';

/** DI token of the admin API's bearer token (a string; see ensureAdminToken). */
export const ADMIN_TOKEN = Symbol('ADMIN_TOKEN');

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/**
 * `Authorization: Bearer <token>` with the admin token, else 401 with a JSON message. Both sides
 * are hashed first, so the constant-time compare also hides the token's length.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly expected: Buffer;

  constructor(@Inject(ADMIN_TOKEN) token: string) {
    this.expected = digest(token);
  }

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const header = http.getRequest<Request>().headers.authorization ?? '';
    const presented = /^Bearer +(\S+) *$/i.exec(header)?.[1];
    if (presented !== undefined && timingSafeEqual(digest(presented), this.expected)) return true;
    // RFC 6750 3: a 401 names the scheme the client should use.
    http.getResponse<Response>().setHeader('WWW-Authenticate', 'Bearer realm="relay-admin"');
    throw new UnauthorizedException(
      presented === undefined
        ? 'Missing bearer token: send "Authorization: Bearer <admin token>"'
        : 'Invalid bearer token',
    );
  }
}

/** Puts a controller (or route) behind the admin token, and says so in the OpenAPI document. */
export const AdminAuth = (): ClassDecorator & MethodDecorator =>
  applyDecorators(
    UseGuards(AdminTokenGuard),
    ApiBearerAuth(),
    ApiUnauthorizedResponse({ description: 'Missing or invalid bearer token.' }),
  );
