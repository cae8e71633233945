import { randomUUID } from 'node:crypto';
import type { AccountPlanChanged } from './events/account.events.js';
import type {
  Bounced,
  Deferred,
  Delivered,
  MessageQueued,
  MessageReceived,
  MessageResubmitted,
  NotificationSent,
  QuotaExceeded,
  RelayDenied,
  Suppressed,
} from './events/message.events.js';
import type { ResendRequested } from './events/resend.events.js';
import type { SuppressionAdded, SuppressionRemoved } from './events/suppression.events.js';
import type { Clicked, Opened, Unsubscribed } from './events/tracking.events.js';

/**
 * Every event type the relay writes, in one greppable list. The strings are a public contract
 * (analytics consumers switch on them); docs/events.md documents each.
 */
export const EVENT_TYPES = [
  'MessageReceived',
  'RelayDenied',
  'Suppressed',
  'QuotaExceeded',
  'MessageQueued',
  'Delivered',
  'Deferred',
  'Bounced',
  'NotificationSent',
  'Opened',
  'Clicked',
  'Unsubscribed',
  'SuppressionAdded',
  'SuppressionRemoved',
  'AccountPlanChanged',
  'ResendRequested',
  'MessageResubmitted',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export type RelayEvent =
  | MessageReceived
  | RelayDenied
  | Suppressed
  | QuotaExceeded
  | MessageQueued
  | Delivered
  | Deferred
  | Bounced
  | NotificationSent
  | Opened
  | Clicked
  | Unsubscribed
  | SuppressionAdded
  | SuppressionRemoved
  | AccountPlanChanged
  | ResendRequested
  | MessageResubmitted;

export type EventOfType<T extends EventType> = Extract<RelayEvent, { type: T }>;

/** Current `version` of each type's `data`. */
export const EVENT_VERSIONS: { readonly [T in EventType]: number } = {
  MessageReceived: 1,
  RelayDenied: 1,
  Suppressed: 1,
  QuotaExceeded: 1,
  MessageQueued: 1,
  Delivered: 1,
  Deferred: 1,
  Bounced: 1,
  NotificationSent: 1,
  Opened: 1,
  Clicked: 1,
  Unsubscribed: 1,
  SuppressionAdded: 1,
  SuppressionRemoved: 1,
  AccountPlanChanged: 1,
  ResendRequested: 1,
  MessageResubmitted: 1,
};

export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value);
}

type EventFields<T extends EventType> = Pick<EventOfType<T>, 'accountId' | 'data'> &
  Partial<Pick<EventOfType<T>, 'messageId' | 'causationId' | 'occurredAt' | 'id'>>;

/** Builds an event of `type` with a fresh id, the current version and the current time. */
export function createEvent<T extends EventType>(type: T, fields: EventFields<T>): EventOfType<T> {
  const event = {
    id: fields.id ?? randomUUID(),
    type,
    version: EVENT_VERSIONS[type],
    occurredAt: fields.occurredAt ?? new Date().toISOString(),
    accountId: fields.accountId,
    ...(fields.messageId === undefined ? {} : { messageId: fields.messageId }),
    ...(fields.causationId === undefined ? {} : { causationId: fields.causationId }),
    data: fields.data,
  };
  // TypeScript cannot narrow a union member from a generic `type`; the fields above are exactly its shape.
  return event as unknown as EventOfType<T>;
}
