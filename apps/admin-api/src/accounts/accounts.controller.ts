import {
  BadRequestException,
  Body,
  ConflictException,
  Controller,
  Get,
  HttpCode,
  HttpStatus,
  Inject,
  NotFoundException,
  Param,
  Patch,
  Post,
  Query,
} from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiTags,
} from '@nestjs/swagger';
import { dkimKeySecret, LOGGER, RELAY_CONFIG, type Logger, type RelayConfig } from '@relay/config';
import {
  type AccountEntity,
  type AccountPatch,
  type AccountWriteOptions,
  AccountsRepository,
  InvalidAccountError,
  UsernameTakenError,
} from '@relay/persistence';
import { AdminAuth } from '../auth/admin-token.guard.js';
import {
  AccountPageDto,
  AccountResponseDto,
  CreateAccountDto,
  type DkimResponseDto,
  ListAccountsQueryDto,
  UpdateAccountDto,
} from './account.dto.js';

const DEFAULT_PAGE_SIZE = 50;

/** DKIM as the API shows it: the TXT records to publish, never a private key. */
function dkimOf(account: AccountEntity): DkimResponseDto | null {
  const rsa = account.dkimKeys.find((key) => key.type === 'rsa');
  if (account.dkimDomain === null || account.dkimSelector === null || rsa === undefined) return null;
  const record = ({ dnsRecord }: (typeof account.dkimKeys)[number]): DkimResponseDto['dnsRecord'] => ({
    name: dnsRecord.name,
    type: dnsRecord.type,
    value: dnsRecord.value,
  });
  return {
    domain: account.dkimDomain,
    selector: account.dkimSelector,
    ed25519: account.dkimKeys.some((key) => key.type === 'ed25519'),
    dnsRecord: record(rsa),
    dnsRecords: account.dkimKeys.map(record),
  };
}

/** The API's view of an account: everything but the password hash and the DKIM private keys. */
function toResponse(account: AccountEntity): AccountResponseDto {
  return {
    id: account.id,
    name: account.name,
    username: account.username,
    allowedIps: account.allowedIps,
    allowedFrom: account.allowedFrom,
    monthlyMessageLimit: account.monthlyMessageLimit,
    monthlyByteLimit: account.monthlyByteLimit,
    overageAllowed: account.overageAllowed,
    wrapWidth: account.wrapWidth,
    tracking: {
      opens: account.trackingOpens,
      clicks: account.trackingClicks,
      urlTextLinks: account.trackUrlTextLinks,
    },
    listUnsubscribe: account.listUnsubscribe,
    trackingDomain: account.trackingDomain,
    bounceNotifications: account.bounceNotifications,
    dkim: dkimOf(account),
    createdAt: account.createdAt.toISOString(),
    updatedAt: account.updatedAt.toISOString(),
  };
}

function toPatch(body: UpdateAccountDto | CreateAccountDto): AccountPatch {
  return {
    name: body.name,
    username: body.username,
    password: body.password,
    allowedIps: body.allowedIps,
    allowedFrom: body.allowedFrom,
    monthlyMessageLimit: body.monthlyMessageLimit,
    monthlyByteLimit: body.monthlyByteLimit,
    overageAllowed: body.overageAllowed,
    wrapWidth: body.wrapWidth,
    trackingOpens: body.tracking?.opens,
    trackingClicks: body.tracking?.clicks,
    trackUrlTextLinks: body.tracking?.urlTextLinks,
    listUnsubscribe: body.listUnsubscribe,
    trackingDomain: body.trackingDomain,
    bounceNotifications: body.bounceNotifications,
    dkim: body.dkim && {
      domain: body.dkim.domain,
      selector: body.dkim.selector,
      ed25519: body.dkim.ed25519,
      rotate: body.dkim.rotate,
    },
  };
}

/** Repository refusals as HTTP answers; anything else stays a 500. */
function asHttpError(error: unknown): unknown {
  if (error instanceof UsernameTakenError) return new ConflictException(error.message);
  if (error instanceof InvalidAccountError) return new BadRequestException([error.message]);
  return error;
}

@ApiTags('accounts')
@AdminAuth()
@Controller('v1/accounts')
export class AccountsController {
  private readonly writeOptions: AccountWriteOptions;

  constructor(
    @Inject(AccountsRepository) private readonly accounts: AccountsRepository,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(RELAY_CONFIG) config: RelayConfig,
  ) {
    // Read (or generated under the data dir) at the first write that makes DKIM keys.
    let secret: Promise<string> | undefined;
    this.writeOptions = { dkimKeySecret: () => (secret ??= dkimKeySecret(config)) };
  }

  /** One line when a write made DKIM keys: the sender has new TXT records to publish. */
  private logNewDkimKeys(account: AccountEntity, since: Date): void {
    const made = account.dkimKeys.filter((key) => new Date(key.createdAt) >= since);
    if (made.length === 0) return;
    this.logger.info('dkim keys generated', {
      accountId: account.id,
      domain: account.dkimDomain,
      records: made.map((key) => key.dnsRecord.name),
    });
  }

  @Post()
  @HttpCode(HttpStatus.CREATED)
  @ApiCreatedResponse({ type: AccountResponseDto })
  @ApiBadRequestResponse({ description: 'A field is missing or invalid; the message names it.' })
  @ApiConflictResponse({ description: 'The username is taken.' })
  async create(@Body() body: CreateAccountDto): Promise<AccountResponseDto> {
    const started = new Date();
    const account = await this.accounts
      .create(
        {
          ...toPatch(body),
          name: body.name,
          username: body.username,
          password: body.password,
          allowedFrom: body.allowedFrom,
        },
        this.writeOptions,
      )
      .catch((error: unknown) => {
        throw asHttpError(error);
      });
    this.logger.info('account created', { accountId: account.id, username: account.username });
    this.logNewDkimKeys(account, started);
    return toResponse(account);
  }

  @Get()
  @ApiOkResponse({ type: AccountPageDto })
  async list(@Query() query: ListAccountsQueryDto): Promise<AccountPageDto> {
    const page = await this.accounts.list({ limit: query.limit ?? DEFAULT_PAGE_SIZE, after: query.cursor });
    return { items: page.items.map(toResponse), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @ApiOkResponse({ type: AccountResponseDto })
  @ApiNotFoundResponse({ description: 'No account has this id.' })
  async get(@Param('id') id: string): Promise<AccountResponseDto> {
    const account = await this.accounts.get(id);
    if (!account) throw new NotFoundException(`No account with id ${id}`);
    return toResponse(account);
  }

  @Patch(':id')
  @ApiOkResponse({ type: AccountResponseDto })
  @ApiBadRequestResponse({ description: 'A field is invalid; the message names it.' })
  @ApiNotFoundResponse({ description: 'No account has this id.' })
  @ApiConflictResponse({ description: 'The new username is taken.' })
  async update(@Param('id') id: string, @Body() body: UpdateAccountDto): Promise<AccountResponseDto> {
    const started = new Date();
    const account = await this.accounts
      .update(id, toPatch(body), this.writeOptions)
      .catch((error: unknown) => {
        throw asHttpError(error);
      });
    if (!account) throw new NotFoundException(`No account with id ${id}`);
    // Field names only: never the values (a password among them).
    this.logger.info('account updated', { accountId: id, fields: Object.keys(body) });
    this.logNewDkimKeys(account, started);
    return toResponse(account);
  }
}
