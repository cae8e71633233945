import type { EventEnvelope } from './envelope.js';
import { EVENT_VERSIONS } from './event-types.js';
import type { EventOfType, EventType } from './event-types.js';
import type { Plan } from './events/account.events.js';
import type {
  BounceClass,
  BounceSource,
  Limits,
  NotificationReason,
  RelayAuthMethod,
  RelayDeniedReason,
  SuppressionList,
  Usage,
} from './events/message.events.js';
import type { SuppressionRemoved, SuppressionSource } from './events/suppression.events.js';
import type { Opened, Unsubscribed } from './events/tracking.events.js';

/** A JSON Schema (draft 2020-12) as a plain value; this lib imports no validator. */
export type JsonSchema = Readonly<Record<string, unknown>>;

type OptionalKeys<T> = { [K in keyof T]-?: Partial<Pick<T, K>> extends Pick<T, K> ? K : never }[keyof T];
type RequiredKeys<T> = Exclude<keyof T, OptionalKeys<T>>;
type Fields<K extends PropertyKey> = { readonly [P in K]: JsonSchema };

/**
 * A closed object: `required` and `optional` must name exactly the required and optional fields
 * of `T`, so the compiler keeps each schema in step with its TypeScript type.
 */
function closedObject<T>(required: Fields<RequiredKeys<T>>, optional: Fields<OptionalKeys<T>>): JsonSchema {
  return {
    type: 'object',
    properties: { ...required, ...optional },
    required: Object.keys(required),
    additionalProperties: false,
  };
}

/** A record rather than a list, so the compiler checks that every member of the union is named. */
function oneOfStrings<V extends string>(values: Readonly<Record<V, true>>): JsonSchema {
  return { type: 'string', enum: Object.keys(values) };
}

const text = { type: 'string' };
const nonEmptyText = { type: 'string', minLength: 1 };
const flag = { type: 'boolean' };
const count = { type: 'integer', minimum: 0 };
const attempt = { type: 'integer', minimum: 1 };
const eventId = { type: 'string', format: 'uuid' };
/** ISO 8601 in UTC as `Date.prototype.toISOString` writes it: the `Z` suffix is part of the contract. */
const utcTimestamp = {
  type: 'string',
  format: 'date-time',
  pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z$',
};
/** Calendar month in UTC, YYYY-MM. */
const period = { type: 'string', pattern: '^\\d{4}-(0[1-9]|1[0-2])$' };
/** The envelope sender; the empty string is the null reverse-path (`MAIL FROM:<>`). */
const reversePath = text;
const address = nonEmptyText;
const addresses = { type: 'array', items: address };
const atLeastOneAddress = { ...addresses, minItems: 1 };
const limit = { type: ['integer', 'null'], minimum: 0 };
const suppressionList = oneOfStrings<SuppressionList>({ bounce: true, unsubscribe: true });

const mimeFlags = { smtpUtf8: flag, eightBitMime: flag };
/** The fields every stage after ingress carries about a spooled message. */
const spooled = {
  recipients: atLeastOneAddress,
  mailFrom: reversePath,
  size: count,
  spoolKey: nonEmptyText,
};
const trackingHit: Fields<RequiredKeys<Opened['data']>> = {
  recipient: address,
  ip: nonEmptyText,
  userAgent: text,
  suspectedScanner: flag,
};
const plan: Fields<RequiredKeys<Plan>> = {
  monthlyMessageLimit: limit,
  monthlyByteLimit: limit,
  overageAllowed: flag,
};

/**
 * Which envelope fields a type guarantees. The TypeScript envelope allows a null account and no
 * message id on every type; the schemas state the narrower contract of envelope.ts: accountId is
 * null only for a RelayDenied, and an event about one message carries its messageId.
 */
interface Scope {
  readonly nullAccount: boolean;
  readonly messageId: boolean;
}
const OF_MESSAGE: Scope = { nullAccount: false, messageId: true };
const OF_ACCOUNT: Scope = { nullAccount: false, messageId: false };
const OF_CLIENT: Scope = { nullAccount: true, messageId: false };

type DataOf<T extends EventType> = EventOfType<T>['data'];

/** The whole envelope of one type, `data` included. */
function eventSchema<T extends EventType>(
  type: T,
  scope: Scope,
  required: Fields<RequiredKeys<DataOf<T>>>,
  optional: Fields<OptionalKeys<DataOf<T>>>,
): JsonSchema {
  const properties: Fields<keyof EventEnvelope<T, unknown>> = {
    id: eventId,
    type: { const: type },
    version: { const: EVENT_VERSIONS[type] },
    occurredAt: utcTimestamp,
    accountId: scope.nullAccount ? { type: ['string', 'null'], minLength: 1 } : nonEmptyText,
    messageId: nonEmptyText,
    causationId: eventId,
    data: closedObject<DataOf<T>>(required, optional),
  };
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: type,
    type: 'object',
    properties,
    required: [
      'id',
      'type',
      'version',
      'occurredAt',
      'accountId',
      ...(scope.messageId ? ['messageId'] : []),
      'data',
    ],
    additionalProperties: false,
  };
}

/** One JSON Schema per event type, for the whole envelope; docs/events.md publishes them. */
export const EVENT_SCHEMAS: { readonly [T in EventType]: JsonSchema } = {
  MessageReceived: eventSchema(
    'MessageReceived',
    OF_MESSAGE,
    {
      mailFrom: reversePath,
      recipients: atLeastOneAddress,
      from: address,
      headerMessageId: nonEmptyText,
      size: count,
      spoolKey: nonEmptyText,
      clientIp: nonEmptyText,
      auth: oneOfStrings<RelayAuthMethod>({ 'smtp-auth': true, 'ip-allow-list': true }),
      tls: flag,
      ...mimeFlags,
    },
    { fromName: text, subject: text, username: nonEmptyText },
  ),
  RelayDenied: eventSchema(
    'RelayDenied',
    OF_CLIENT,
    {
      reason: oneOfStrings<RelayDeniedReason>({ 'not-authenticated': true, 'from-not-allowed': true }),
      clientIp: nonEmptyText,
      mailFrom: reversePath,
      recipients: addresses,
    },
    { from: address, fromName: text, subject: text },
  ),
  Suppressed: eventSchema(
    'Suppressed',
    OF_MESSAGE,
    {
      recipient: address,
      list: suppressionList,
      mailFrom: reversePath,
      from: address,
      spoolKey: nonEmptyText,
    },
    {},
  ),
  QuotaExceeded: eventSchema(
    'QuotaExceeded',
    OF_MESSAGE,
    {
      ...spooled,
      from: address,
      period,
      usage: closedObject<Usage>({ messages: count, bytes: count }, {}),
      limits: closedObject<Limits>({ messages: limit, bytes: limit }, {}),
      ...mimeFlags,
    },
    { resendId: nonEmptyText },
  ),
  MessageQueued: eventSchema(
    'MessageQueued',
    OF_MESSAGE,
    { ...spooled, period, ...mimeFlags, receivedAt: utcTimestamp },
    { resendId: nonEmptyText },
  ),
  Delivered: eventSchema(
    'Delivered',
    OF_MESSAGE,
    { recipient: address, mx: nonEmptyText, remoteReply: text, attempt, latencyMs: count },
    {},
  ),
  Deferred: eventSchema(
    'Deferred',
    OF_MESSAGE,
    { recipient: address, remoteReply: text, attempt, nextAttemptAt: utcTimestamp },
    { mx: nonEmptyText },
  ),
  Bounced: eventSchema(
    'Bounced',
    OF_MESSAGE,
    {
      recipient: address,
      bounceClass: oneOfStrings<BounceClass>({ hard: true, soft: true }),
      category: nonEmptyText,
      /** RFC 3463 section 3.1: class 2, 4 or 5, then subject and detail of up to three digits. */
      status: { type: 'string', pattern: '^[245]\\.\\d{1,3}\\.\\d{1,3}$' },
      diagnostic: text,
      source: oneOfStrings<BounceSource>({ smtp: true, dsn: true, expired: true, routing: true }),
      attempt,
    },
    { mx: nonEmptyText },
  ),
  NotificationSent: eventSchema(
    'NotificationSent',
    OF_ACCOUNT,
    {
      reason: oneOfStrings<NotificationReason>({
        'suppressed-bounce': true,
        'suppressed-unsubscribe': true,
        'relay-denied': true,
        bounced: true,
        'quota-exceeded': true,
      }),
      notified: address,
      recipients: addresses,
      notificationMessageId: nonEmptyText,
    },
    {},
  ),
  Opened: eventSchema('Opened', OF_MESSAGE, trackingHit, {}),
  Clicked: eventSchema('Clicked', OF_MESSAGE, { ...trackingHit, url: nonEmptyText }, {}),
  Unsubscribed: eventSchema(
    'Unsubscribed',
    OF_MESSAGE,
    {
      recipient: address,
      method: oneOfStrings<Unsubscribed['data']['method']>({ 'one-click': true, page: true }),
      ip: nonEmptyText,
      userAgent: text,
    },
    {},
  ),
  SuppressionAdded: eventSchema(
    'SuppressionAdded',
    OF_ACCOUNT,
    {
      address,
      list: suppressionList,
      source: oneOfStrings<SuppressionSource>({ bounce: true, unsubscribe: true, admin: true, import: true }),
      reason: text,
    },
    {},
  ),
  SuppressionRemoved: eventSchema(
    'SuppressionRemoved',
    OF_ACCOUNT,
    {
      address,
      list: suppressionList,
      source: oneOfStrings<SuppressionRemoved['data']['source']>({ admin: true, import: true }),
    },
    {},
  ),
  AccountPlanChanged: eventSchema('AccountPlanChanged', OF_ACCOUNT, plan, {
    previous: closedObject<Plan>(plan, {}),
  }),
  ResendRequested: eventSchema(
    'ResendRequested',
    OF_ACCOUNT,
    { resendId: nonEmptyText, since: utcTimestamp, dryRun: flag },
    {},
  ),
  MessageResubmitted: eventSchema(
    'MessageResubmitted',
    OF_MESSAGE,
    { ...spooled, resendId: nonEmptyText, from: address, ...mimeFlags, quotaExceededEventId: eventId },
    {},
  ),
};
