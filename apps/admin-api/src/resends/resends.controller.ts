import {
  BadRequestException,
  Body,
  Controller,
  Get,
  HttpCode,
  HttpStatus,
  Inject,
  NotFoundException,
  Param,
  Post,
  Res,
} from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiExtraModels,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { LOGGER, type Logger } from '@relay/config';
import { ResendsRepository, type ResendProgress } from '@relay/persistence';
import { AdminAuth } from '../auth/admin-token.guard.js';
import { defaultSince, RequestResendHandler, resendWindowError } from './request-resend.handler.js';
import { RequestResendDto, ResendAcceptedDto, ResendDryRunDto, ResendDto } from './resend.dto.js';

const resendPath = (id: string): string => `/v1/resends/${id}`;

/** Resends of mail the quota held back: the request (or its dry run) and its progress. */
@ApiTags('resends')
@AdminAuth()
@ApiExtraModels(ResendAcceptedDto, ResendDryRunDto)
@Controller('v1')
export class ResendsController {
  constructor(
    @Inject(RequestResendHandler) private readonly requestResend: RequestResendHandler,
    @Inject(ResendsRepository) private readonly resends: ResendsRepository,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @Post('accounts/:id/resends')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({
    summary: 'Resend the mail the quota held back since `since` (at most 72 hours ago), or list it (dryRun).',
    description:
      'Records a ResendRequested. The worker then hands each recipient held back since `since` (QuotaExceeded) ' +
      'back to the policy stage, which decides under the current plan: some may be held back again. ' +
      'Recipients delivered or resent since are left out, so asking again resends nothing twice. ' +
      'A dry run answers 200 with the list and resends nothing.',
  })
  @ApiAcceptedResponse({ description: 'The resend is recorded.', type: ResendAcceptedDto })
  @ApiOkResponse({
    description: 'dryRun: what would be resent now.',
    schema: { $ref: getSchemaPath(ResendDryRunDto) },
  })
  @ApiBadRequestResponse({ description: 'since is more than 72 hours ago, in the future, or no date-time.' })
  @ApiNotFoundResponse({ description: 'No account has this id.' })
  async request(
    @Param('id') accountId: string,
    @Body() body: RequestResendDto,
    @Res({ passthrough: true }) response: Response,
  ): Promise<ResendAcceptedDto | ResendDryRunDto> {
    const requestedAt = new Date();
    const since = body.since === undefined ? defaultSince(requestedAt) : new Date(body.since);
    const invalid = resendWindowError(since, requestedAt);
    if (invalid) throw new BadRequestException([invalid]);
    const dryRun = body.dryRun ?? false;
    const result = await this.requestResend.execute({ accountId, since, requestedAt, dryRun });
    switch (result.outcome) {
      case 'no-account':
        throw new NotFoundException(`No account with id ${accountId}`);
      case 'dry-run': {
        const items = [...result.held]
          .sort((a, b) => Date.parse(a.quotaExceeded.occurredAt) - Date.parse(b.quotaExceeded.occurredAt))
          .map((mail) => ({
            messageId: mail.messageId,
            recipients: [...mail.recipients],
            heldAt: mail.quotaExceeded.occurredAt,
          }));
        const total = items.reduce((n, item) => n + item.recipients.length, 0);
        this.logger.info('resend dry run', {
          accountId,
          since: since.toISOString(),
          messages: items.length,
          total,
        });
        response.status(HttpStatus.OK);
        return { since: since.toISOString(), items, total };
      }
      case 'requested':
        this.logger.info('resend requested', {
          accountId,
          resendId: result.resendId,
          since: since.toISOString(),
        });
        response.setHeader('Location', resendPath(result.resendId));
        return {
          id: result.resendId,
          status: 'requested',
          since: since.toISOString(),
          links: { self: resendPath(result.resendId) },
        };
    }
  }

  @Get('resends/:id')
  @ApiOperation({ summary: 'A resend and its progress.' })
  @ApiOkResponse({ type: ResendDto })
  @ApiNotFoundResponse({ description: 'No resend has this id (dry runs are not kept).' })
  async get(@Param('id') id: string): Promise<ResendProgress> {
    const resend = await this.resends.get(id);
    if (!resend) throw new NotFoundException(`No resend with id ${id}`);
    return resend;
  }
}
