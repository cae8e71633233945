import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayNotEmpty,
  IsArray,
  IsBoolean,
  IsDefined,
  IsFQDN,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateBy,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { invalidAllowedFromEntries } from '@relay/domain';
import { parseCidr } from '@relay/persistence';
import { NextCursorField, PageSizeField } from '../page.dto.js';

/**
 * Request and response bodies of /v1/accounts. Each field's rules are written once and used by
 * both the create and the patch body; only whether the field must be present differs. The
 * ValidationPipe stops at a property's first failing rule. Rules run in the order they are
 * registered, which for stacked decorators is bottom-up; so each property gets one
 * applyDecorators(...) whose list reads, and runs, top-down.
 */

const MAX_LIST_ENTRIES = 1000;
const MAX_INT32 = 2_147_483_647;

type Presence = 'required' | 'optional' | 'nullable';

/**
 * required: must be there. optional: may be left out, but null is refused (the column is NOT NULL).
 * nullable: may be left out or null (null clears it).
 */
function presence(name: string, mode: Presence): PropertyDecorator {
  switch (mode) {
    case 'required':
      return IsDefined({ message: `${name} is required` });
    case 'optional':
      return ValidateIf((_: unknown, value: unknown) => value !== undefined);
    case 'nullable':
      return IsOptional();
  }
}

const cidrList = (): PropertyDecorator =>
  ValidateBy({
    name: 'isCidrList',
    validator: {
      validate: (value: unknown) => Array.isArray(value) && value.every((v) => parseCidr(String(v)).ok),
      defaultMessage: (args) => {
        const list = Array.isArray(args?.value) ? (args.value as unknown[]) : [];
        const index = list.findIndex((v) => !parseCidr(String(v)).ok);
        const parsed = parseCidr(String(list[index]));
        return `${args?.property}[${index}]: ${parsed.ok ? 'invalid' : parsed.reason}`;
      },
    },
  });

const allowedFromList = (): PropertyDecorator =>
  ValidateBy({
    name: 'isAllowedFromList',
    validator: {
      validate: (value: unknown) =>
        Array.isArray(value) && invalidAllowedFromEntries(value as string[]).length === 0,
      defaultMessage: (args) => {
        const invalid = invalidAllowedFromEntries((args?.value ?? []) as string[]);
        return `${args?.property} entries must be an address, @domain or *; not: ${invalid.map((e) => JSON.stringify(e)).join(', ')}`;
      },
    },
  });

const NameField = (mode: Presence): PropertyDecorator =>
  applyDecorators(
    ApiProperty({
      description: 'Display name for support agents.',
      example: 'Acme Corp',
      required: mode === 'required',
    }),
    presence('name', mode),
    IsString(),
    Length(1, 200),
  );

const UsernameField = (mode: Presence): PropertyDecorator =>
  applyDecorators(
    ApiProperty({
      description: 'SMTP AUTH username; unique.',
      example: 'acme',
      required: mode === 'required',
    }),
    presence('username', mode),
    IsString(),
    Length(1, 254),
    Matches(/^[^\s\p{Cc}]+$/u, { message: 'username must not contain spaces or control characters' }),
  );

const PasswordField = (mode: Presence): PropertyDecorator =>
  applyDecorators(
    ApiProperty({
      description: 'SMTP AUTH password; stored as a salted scrypt hash and never returned.',
      example: 'correct horse battery staple',
      required: mode === 'required',
      writeOnly: true,
    }),
    presence('password', mode),
    IsString(),
    Length(8, 1024, { message: 'password must be 8 to 1024 characters long' }),
  );

const AllowedIpsField = (mode: Presence): PropertyDecorator =>
  applyDecorators(
    ApiProperty({
      description:
        'CIDRs (or single addresses) from which a client may relay without AUTH; the longest prefix wins across accounts.',
      type: [String],
      example: ['203.0.113.0/24', '2001:db8::/32'],
      required: false,
    }),
    presence('allowedIps', mode),
    IsArray(),
    ArrayMaxSize(MAX_LIST_ENTRIES),
    IsString({ each: true }),
    cidrList(),
  );

const AllowedFromField = (mode: Presence): PropertyDecorator =>
  applyDecorators(
    ApiProperty({
      description: 'From addresses the account may send as: addresses, @domain entries or * (any).',
      type: [String],
      example: ['@acme.example', 'billing@acme-mail.example'],
      required: mode === 'required',
    }),
    presence('allowedFrom', mode),
    IsArray(),
    ArrayNotEmpty({ message: 'allowedFrom must list at least one address, @domain or *' }),
    ArrayMaxSize(MAX_LIST_ENTRIES),
    IsString({ each: true }),
    allowedFromList(),
  );

const LIMITS = {
  monthlyMessageLimit: { max: MAX_INT32, unit: 'Messages' },
  monthlyByteLimit: { max: Number.MAX_SAFE_INTEGER, unit: 'Bytes' },
} as const;

const LimitField = (name: keyof typeof LIMITS): PropertyDecorator =>
  applyDecorators(
    ApiPropertyOptional({
      description: `${LIMITS[name].unit} per calendar month (UTC); null is unlimited.`,
      type: Number,
      nullable: true,
      example: 10000,
    }),
    presence(name, 'nullable'),
    IsInt(),
    Min(0),
    Max(LIMITS[name].max),
  );

const FlagField = (name: string, description: string, defaultValue = false): PropertyDecorator =>
  applyDecorators(
    ApiPropertyOptional({ description, type: Boolean, default: defaultValue }),
    presence(name, 'optional'),
    IsBoolean(),
  );

const WrapWidthField = (): PropertyDecorator =>
  applyDecorators(
    ApiPropertyOptional({
      description: 'Wrap text lines at this width; 0 turns wrapping off.',
      default: 76,
      example: 76,
    }),
    presence('wrapWidth', 'optional'),
    IsInt(),
    Min(0),
    // RFC 5322 2.1.1: no line may exceed 998 characters.
    Max(998),
  );

/**
 * A host name as DNS and URLs carry it: ASCII labels (an IDN in its xn-- form), a TLD, at most
 * 253 characters (RFC 1035 2.3.4), no trailing dot, no port.
 */
const hostname = (name: string): PropertyDecorator =>
  applyDecorators(
    IsString(),
    MaxLength(253, { message: `${name} must be at most 253 characters long` }),
    IsFQDN({ require_tld: true }, { message: `${name} must be a domain name` }),
    Matches(/^[a-z0-9.-]+$/i, { message: `${name} must be a domain name in ASCII (an IDN as xn--...)` }),
  );

const HostnameField = (name: string, description: string): PropertyDecorator =>
  applyDecorators(
    ApiPropertyOptional({ description, type: String, nullable: true, example: 'links.acme.example' }),
    presence(name, 'nullable'),
    hostname(name),
  );

export class TrackingDto {
  @FlagField('opens', 'Add an open pixel to HTML parts.')
  opens?: boolean;

  @FlagField('clicks', 'Rewrite http(s) links to the click redirect.')
  clicks?: boolean;

  @FlagField(
    'urlTextLinks',
    'With clicks: also rewrite links whose visible text is a URL (left alone by default: a visible URL that no longer matches the target looks like phishing to filters).',
  )
  urlTextLinks?: boolean;
}

export class DkimDto {
  @applyDecorators(
    ApiProperty({ description: 'Signing domain (d=).', example: 'acme.example' }),
    presence('domain', 'required'),
    hostname('domain'),
  )
  domain!: string;

  @applyDecorators(
    ApiProperty({
      description: 'Selector (s=): the key is published at <selector>._domainkey.<domain>.',
      example: 'relay1',
    }),
    presence('selector', 'required'),
    IsString(),
    // The Ed25519 key's selector appends "-ed25519", and a DNS label holds at most 63 characters.
    MaxLength(55, { message: 'selector must be at most 55 characters long' }),
    Matches(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i, {
      message: 'selector must be one or more DNS labels',
    }),
  )
  selector!: string;

  @FlagField(
    'ed25519',
    'Also sign with an Ed25519 key (RFC 8463), published at <selector>-ed25519._domainkey.<domain>. Left out: as the account has it now (none when new).',
  )
  ed25519?: boolean;

  @FlagField(
    'rotate',
    'Generate new keys although domain and selector are unchanged (publish the new TXT records first: mail is signed with the new keys at once).',
  )
  rotate?: boolean;
}

const TrackingField = (): PropertyDecorator =>
  applyDecorators(
    ApiPropertyOptional({ type: TrackingDto, description: 'Open and click tracking.' }),
    presence('tracking', 'optional'),
    IsObject(),
    ValidateNested(),
    Type(() => TrackingDto),
  );

const DkimField = (): PropertyDecorator =>
  applyDecorators(
    ApiPropertyOptional({
      type: DkimDto,
      nullable: true,
      description:
        'DKIM signing: a new domain or selector generates a key pair (RSA 2048, and Ed25519 if asked); the same domain and selector keep the keys unless rotate. null turns signing off and deletes the keys.',
    }),
    presence('dkim', 'nullable'),
    IsObject(),
    ValidateNested(),
    Type(() => DkimDto),
  );

const BOUNCE_NOTIFICATIONS = 'Mail the sender a bounce report for each Bounced recipient.';
const OVERAGE_ALLOWED = 'Never hold mail over the limits; count what goes past them as overage.';
const TRACKING_DOMAIN = 'Host of tracking URLs (CNAME to the tracker); null uses TRACKING_BASE_URL.';
const LIST_UNSUBSCRIBE = 'Add List-Unsubscribe and List-Unsubscribe-Post (RFC 8058 one-click) headers.';

export class CreateAccountDto {
  @NameField('required') name!: string;
  @UsernameField('required') username!: string;
  @PasswordField('required') password!: string;
  @AllowedIpsField('optional') allowedIps?: string[];
  @AllowedFromField('required') allowedFrom!: string[];
  @LimitField('monthlyMessageLimit') monthlyMessageLimit?: number | null;
  @LimitField('monthlyByteLimit') monthlyByteLimit?: number | null;
  @FlagField('overageAllowed', OVERAGE_ALLOWED) overageAllowed?: boolean;
  @WrapWidthField() wrapWidth?: number;
  @TrackingField() tracking?: TrackingDto;
  @FlagField('listUnsubscribe', LIST_UNSUBSCRIBE, true) listUnsubscribe?: boolean;
  @HostnameField('trackingDomain', TRACKING_DOMAIN) trackingDomain?: string | null;
  @FlagField('bounceNotifications', BOUNCE_NOTIFICATIONS) bounceNotifications?: boolean;
  @DkimField() dkim?: DkimDto | null;
}

/** PATCH: every field optional; null clears the nullable ones and is refused for the others. */
export class UpdateAccountDto {
  @NameField('optional') name?: string;
  @UsernameField('optional') username?: string;
  @PasswordField('optional') password?: string;
  @AllowedIpsField('optional') allowedIps?: string[];
  @AllowedFromField('optional') allowedFrom?: string[];
  @LimitField('monthlyMessageLimit') monthlyMessageLimit?: number | null;
  @LimitField('monthlyByteLimit') monthlyByteLimit?: number | null;
  @FlagField('overageAllowed', OVERAGE_ALLOWED) overageAllowed?: boolean;
  @WrapWidthField() wrapWidth?: number;
  @TrackingField() tracking?: TrackingDto;
  @FlagField('listUnsubscribe', LIST_UNSUBSCRIBE, true) listUnsubscribe?: boolean;
  @HostnameField('trackingDomain', TRACKING_DOMAIN) trackingDomain?: string | null;
  @FlagField('bounceNotifications', BOUNCE_NOTIFICATIONS) bounceNotifications?: boolean;
  @DkimField() dkim?: DkimDto | null;
}

export class ListAccountsQueryDto {
  @PageSizeField(200) limit?: number;

  @applyDecorators(
    ApiPropertyOptional({ description: 'The nextCursor of the previous page.' }),
    IsOptional(),
    IsUUID('all', { message: 'cursor must be the nextCursor of a previous page' }),
  )
  cursor?: string;
}

export class TrackingResponseDto {
  @ApiProperty() opens!: boolean;
  @ApiProperty() clicks!: boolean;
  @ApiProperty() urlTextLinks!: boolean;
}

export class DnsRecordDto {
  @ApiProperty({ example: 'relay1._domainkey.acme.example' }) name!: string;
  @ApiProperty({ enum: ['TXT'] }) type!: 'TXT';
  @ApiProperty({
    description: 'Longer than 255 characters: DNS providers split it into strings of one record.',
    example: 'v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA...',
  })
  value!: string;
}

export class DkimResponseDto {
  @ApiProperty() domain!: string;
  @ApiProperty() selector!: string;
  @ApiProperty({ description: 'Also signs with an Ed25519 key.' }) ed25519!: boolean;
  @ApiProperty({ type: DnsRecordDto, description: 'The RSA key: the TXT record to publish.' })
  dnsRecord!: DnsRecordDto;
  @ApiProperty({ type: [DnsRecordDto], description: 'Every key to publish: RSA, then Ed25519 when on.' })
  dnsRecords!: DnsRecordDto[];
}

export class AccountResponseDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty() username!: string;
  @ApiProperty({ type: [String] }) allowedIps!: string[];
  @ApiProperty({ type: [String] }) allowedFrom!: string[];
  @ApiProperty({ type: Number, nullable: true }) monthlyMessageLimit!: number | null;
  @ApiProperty({ type: Number, nullable: true }) monthlyByteLimit!: number | null;
  @ApiProperty() overageAllowed!: boolean;
  @ApiProperty() wrapWidth!: number;
  @ApiProperty({ type: TrackingResponseDto }) tracking!: TrackingResponseDto;
  @ApiProperty() listUnsubscribe!: boolean;
  @ApiProperty({ type: String, nullable: true }) trackingDomain!: string | null;
  @ApiProperty() bounceNotifications!: boolean;
  @ApiProperty({ type: DkimResponseDto, nullable: true }) dkim!: DkimResponseDto | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;
}

export class AccountPageDto {
  @ApiProperty({ type: [AccountResponseDto] }) items!: AccountResponseDto[];
  @NextCursorField() nextCursor!: string | null;
}
