import { Controller, Get, Inject, NotFoundException, Param, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiNotFoundResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AccountsRepository, DeliveryReportsRepository, type MessageReport } from '@relay/persistence';
import { AdminAuth } from '../auth/admin-token.guard.js';
import { ListMessagesQueryDto, MessagePageDto, MessageReportDto } from './message-report.dto.js';

const DEFAULT_PAGE_SIZE = 50;

/** Delivery reports: what happened to a message and to each recipient (read model of the projector). */
@ApiTags('messages')
@AdminAuth()
@Controller('v1')
export class MessagesController {
  constructor(
    @Inject(DeliveryReportsRepository) private readonly reports: DeliveryReportsRepository,
    @Inject(AccountsRepository) private readonly accounts: AccountsRepository,
  ) {}

  @Get('messages/:messageId')
  @ApiOkResponse({ type: MessageReportDto })
  @ApiNotFoundResponse({ description: 'The report has no message with this id (yet: it follows the log).' })
  async get(@Param('messageId') messageId: string): Promise<MessageReport> {
    const report = await this.reports.get(messageId);
    if (!report) throw new NotFoundException(`No message with id ${messageId}`);
    return report;
  }

  @Get('accounts/:id/messages')
  @ApiOkResponse({ type: MessagePageDto })
  @ApiBadRequestResponse({ description: 'A bad status, since, limit or cursor; the message names it.' })
  @ApiNotFoundResponse({ description: 'No account has this id.' })
  async list(@Param('id') accountId: string, @Query() query: ListMessagesQueryDto): Promise<MessagePageDto> {
    if (!(await this.accounts.get(accountId))) throw new NotFoundException(`No account with id ${accountId}`);
    const page = await this.reports.list({
      accountId,
      status: query.status,
      since: query.since === undefined ? undefined : new Date(query.since),
      limit: query.limit ?? DEFAULT_PAGE_SIZE,
      cursor: query.cursor,
    });
    return { items: [...page.items], nextCursor: page.nextCursor };
  }
}
