import { Readable } from 'node:stream';
import {
  BadRequestException,
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpStatus,
  Inject,
  NotFoundException,
  Param,
  PayloadTooLargeException,
  Post,
  Query,
  Req,
  StreamableFile,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiBody,
  ApiConsumes,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiPayloadTooLargeResponse,
  ApiProduces,
  ApiTags,
  ApiUnsupportedMediaTypeResponse,
} from '@nestjs/swagger';
import type { Request } from 'express';
import { LOGGER, type Logger } from '@relay/config';
import { suppressionKey } from '@relay/domain';
import {
  AccountsRepository,
  isSuppressionList,
  SUPPRESSION_LISTS,
  SuppressionsRepository,
} from '@relay/persistence';
import { AdminAuth } from '../auth/admin-token.guard.js';
import { AddSuppressionsHandler } from './add-suppressions.handler.js';
import { RemoveSuppressionHandler } from './remove-suppression.handler.js';
import { readCsv, suppressionsCsv } from './suppression-csv.js';
import { parseSuppressionImport, type SuppressionToAdd } from './suppression-import.js';
import {
  AddSuppressionsDto,
  ImportSuppressionsQueryDto,
  SearchSuppressionsQueryDto,
  SuppressionListQueryDto,
  SuppressionPageDto,
  SuppressionRemovedDto,
  SuppressionsAddedDto,
  SuppressionsImportedDto,
} from './suppression.dto.js';

const DEFAULT_PAGE_SIZE = 50;
/** Largest CSV import, in bytes: about 700 000 rows of a typical export. */
export const MAX_IMPORT_BYTES = 20 * 1024 * 1024;
const CSV_TYPES = new Set(['text/csv', 'text/plain', 'application/csv']);
const ADMIN_REASON = 'Added by a support agent';
const IMPORT_REASON = 'Imported from CSV';

const EVENTUAL =
  'The events are durably recorded when this answers; the list (GET, and the policy stage that stops mail) ' +
  'shows the change once the projector has applied them, usually within a second.';

/**
 * An answer given before the body was read to its end: the connection cannot carry another
 * request after it, so the answer closes it.
 */
function unread<E extends Error>(request: Request, error: E): E {
  request.res?.setHeader('Connection', 'close');
  return error;
}

const tooLarge = (): PayloadTooLargeException =>
  new PayloadTooLargeException(`The CSV body is larger than ${MAX_IMPORT_BYTES} bytes`);

/** The request body as it arrives, refused with 413 past MAX_IMPORT_BYTES. */
async function* limited(request: Request): AsyncGenerator<Uint8Array> {
  let received = 0;
  for await (const chunk of request as AsyncIterable<Uint8Array>) {
    received += chunk.length;
    if (received > MAX_IMPORT_BYTES) throw unread(request, tooLarge());
    yield chunk;
  }
}

/** The account's Bounce and Unsubscribe lists (read model of the projector; writes are events). */
@ApiTags('suppressions')
@AdminAuth()
@Controller('v1/accounts/:id')
export class SuppressionsController {
  constructor(
    @Inject(SuppressionsRepository) private readonly suppressions: SuppressionsRepository,
    @Inject(AccountsRepository) private readonly accounts: AccountsRepository,
    @Inject(AddSuppressionsHandler) private readonly addSuppressions: AddSuppressionsHandler,
    @Inject(RemoveSuppressionHandler) private readonly removeSuppression: RemoveSuppressionHandler,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @Get('suppressions')
  @ApiOperation({ summary: 'Search the Bounce and Unsubscribe lists, newest first, a page at a time.' })
  @ApiOkResponse({ type: SuppressionPageDto })
  @ApiBadRequestResponse({ description: 'A bad list, q, limit or cursor; the message names it.' })
  @ApiNotFoundResponse({ description: 'No account has this id.' })
  async search(
    @Param('id') accountId: string,
    @Query() query: SearchSuppressionsQueryDto,
  ): Promise<SuppressionPageDto> {
    await this.assertAccount(accountId);
    const page = await this.suppressions.search(accountId, {
      list: query.list,
      q: query.q,
      cursor: query.cursor,
      limit: query.limit ?? DEFAULT_PAGE_SIZE,
    });
    return { items: [...page.items], nextCursor: page.nextCursor };
  }

  @Post('suppressions')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({
    summary: 'Add one address ({list, address}) or many ({list, addresses}) to a list.',
    description: `Records a SuppressionAdded (source admin) for each address not already on the list. ${EVENTUAL}`,
  })
  @ApiAcceptedResponse({ type: SuppressionsAddedDto })
  @ApiBadRequestResponse({ description: 'A field is missing or invalid; invalid addresses are named.' })
  @ApiNotFoundResponse({ description: 'No account has this id.' })
  async add(@Param('id') accountId: string, @Body() body: AddSuppressionsDto): Promise<SuppressionsAddedDto> {
    const addresses = body.addresses ?? (body.address === undefined ? [] : [body.address]);
    const entries = unique(
      addresses.map((address) => ({ address, list: body.list, reason: body.reason ?? ADMIN_REASON })),
    );
    const result = await this.addSuppressions.execute({ accountId, entries, source: 'admin' });
    if (!result) throw this.noAccount(accountId);
    this.logger.info('suppressions added', {
      accountId,
      list: body.list,
      source: 'admin',
      recorded: result.recorded,
    });
    return { recorded: result.recorded, skipped: addresses.length - result.recorded };
  }

  @Delete('suppressions/:list/:address')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({
    summary: 'Remove an address from a list: mail to it goes through again.',
    description: `Records a SuppressionRemoved (source admin). ${EVENTUAL} The address matches by its key: its domain in any case.`,
  })
  @ApiAcceptedResponse({ type: SuppressionRemovedDto })
  @ApiParam({ name: 'list', enum: SUPPRESSION_LISTS })
  @ApiParam({
    name: 'address',
    description: 'The address, percent-encoded as a path segment (a / in it as %2F).',
    example: 'grace@example.net',
  })
  @ApiBadRequestResponse({ description: 'The list is neither bounce nor unsubscribe.' })
  @ApiNotFoundResponse({ description: 'No account has this id, or the address is not on the list.' })
  async remove(
    @Param('id') accountId: string,
    @Param('list') list: string,
    @Param('address') address: string,
  ): Promise<SuppressionRemovedDto> {
    if (!isSuppressionList(list))
      throw new BadRequestException([`list must be one of: ${SUPPRESSION_LISTS.join(', ')}`]);
    const result = await this.removeSuppression.execute({ accountId, list, address });
    switch (result.outcome) {
      case 'no-account':
        throw this.noAccount(accountId);
      case 'not-listed':
        throw new NotFoundException(`${address} is not on the ${list} list of account ${accountId}`);
      case 'removed':
        this.logger.info('suppression removed', {
          accountId,
          list,
          address: result.entry.address,
          source: 'admin',
        });
        return { removed: { ...result.entry } };
    }
  }

  @Get('suppressions.csv')
  @ApiOperation({
    summary: 'Export the lists as CSV (RFC 4180), streamed.',
    description: 'Columns: address,list,reason,source,created_at; by list, then address.',
  })
  @ApiProduces('text/csv')
  @ApiOkResponse({ description: 'The CSV file.', schema: { type: 'string' } })
  @ApiBadRequestResponse({ description: 'A bad list.' })
  @ApiNotFoundResponse({ description: 'No account has this id.' })
  async exportCsv(
    @Param('id') accountId: string,
    @Query() query: SuppressionListQueryDto,
  ): Promise<StreamableFile> {
    await this.assertAccount(accountId);
    const csv = suppressionsCsv(this.suppressions.exportRows(accountId, query.list));
    const name = `suppressions-${accountId}${query.list ? `-${query.list}` : ''}.csv`;
    return new StreamableFile(Readable.from(csv), {
      type: 'text/csv; charset=utf-8',
      disposition: `attachment; filename="${name}"`,
    });
  }

  @Post('suppressions/import')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({
    summary: 'Import addresses from a CSV file (text/csv body, up to 20 MB).',
    description:
      'A header row is optional. Without one the columns are address[,list][,reason]. With one, the ' +
      'address column is the one named address or email (as in other providers’ exports: "Email ' +
      'Address", "email"), list and reason are found by name, and other columns are ignored. ' +
      '?list= puts every row on that list; without it each row names its list. Invalid rows are ' +
      'reported by line and the valid ones imported; addresses already listed, or repeated, are ' +
      `skipped. Records a SuppressionAdded (source import) for each imported row. ${EVENTUAL}`,
  })
  @ApiConsumes('text/csv')
  @ApiBody({
    schema: { type: 'string', example: 'email,reason\r\nada@example.org,moved from another provider\r\n' },
  })
  @ApiAcceptedResponse({ type: SuppressionsImportedDto })
  @ApiBadRequestResponse({ description: 'A bad list.' })
  @ApiNotFoundResponse({ description: 'No account has this id.' })
  @ApiPayloadTooLargeResponse({ description: 'The body is larger than 20 MB.' })
  @ApiUnsupportedMediaTypeResponse({ description: 'The body is not text/csv.' })
  async importCsv(
    @Param('id') accountId: string,
    @Query() query: ImportSuppressionsQueryDto,
    @Req() request: Request,
  ): Promise<SuppressionsImportedDto> {
    const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    if (!CSV_TYPES.has(type))
      throw unread(request, new UnsupportedMediaTypeException('Send the CSV file as a text/csv body'));
    if (Number(request.headers['content-length'] ?? 0) > MAX_IMPORT_BYTES) throw unread(request, tooLarge());
    // Before reading the body: an unknown account should not cost a 20 MB upload.
    if (!(await this.accounts.get(accountId))) throw unread(request, this.noAccount(accountId));
    const parsed = await parseSuppressionImport(readCsv(limited(request)), {
      ...(query.list === undefined ? {} : { list: query.list }),
      defaultReason: IMPORT_REASON,
    });
    const result = await this.addSuppressions.execute({
      accountId,
      entries: parsed.entries,
      source: 'import',
    });
    if (!result) throw this.noAccount(accountId);
    this.logger.info('suppressions imported', {
      accountId,
      list: query.list ?? 'per row',
      source: 'import',
      recorded: result.recorded,
      invalid: parsed.invalidCount,
    });
    return {
      imported: result.recorded,
      skipped: parsed.repeated + result.alreadyListed,
      invalid: parsed.invalid,
      invalidCount: parsed.invalidCount,
    };
  }

  private async assertAccount(accountId: string): Promise<void> {
    if (!(await this.accounts.get(accountId))) throw this.noAccount(accountId);
  }

  private noAccount(accountId: string): NotFoundException {
    return new NotFoundException(`No account with id ${accountId}`);
  }
}

/** Each (list, address) once, by the address's key: the request may repeat one. */
function unique(entries: readonly SuppressionToAdd[]): SuppressionToAdd[] {
  const seen = new Set<string>();
  return entries.filter((entry) => {
    const id = `${entry.list} ${suppressionKey(entry.address)}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}
