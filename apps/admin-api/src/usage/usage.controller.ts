import { Controller, Get, Inject, NotFoundException, Param, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { periodOf } from '@relay/domain';
import { QuotaUsageRepository, type QuotaUsageReport } from '@relay/persistence';
import { AdminAuth } from '../auth/admin-token.guard.js';
import { UsageDto, UsageQueryDto } from './usage.dto.js';

/** An account's monthly usage against its plan (read model of the "quota" projector). */
@ApiTags('usage')
@AdminAuth()
@Controller('v1/accounts/:id')
export class UsageController {
  constructor(@Inject(QuotaUsageRepository) private readonly quota: QuotaUsageRepository) {}

  @Get('usage')
  @ApiOperation({
    summary: 'Messages and bytes queued in a month, both limits and both overages.',
    description:
      'Each recipient the policy stage queued counts one message and the message’s size; suppressed ' +
      'and over-quota recipients do not count. The figures follow the event log, usually within a second.',
  })
  @ApiOkResponse({ type: UsageDto })
  @ApiBadRequestResponse({ description: 'The period is not a month written YYYY-MM.' })
  @ApiNotFoundResponse({ description: 'No account has this id.' })
  async get(@Param('id') accountId: string, @Query() query: UsageQueryDto): Promise<QuotaUsageReport> {
    const usage = await this.quota.usage(accountId, query.period ?? periodOf(new Date()));
    if (!usage) throw new NotFoundException(`No account with id ${accountId}`);
    return usage;
  }
}
