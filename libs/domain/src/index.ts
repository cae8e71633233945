export type { EventEnvelope } from './envelope.js';
export * from './event-types.js';
export type * from './events/message.events.js';
export type * from './events/tracking.events.js';
export type * from './events/suppression.events.js';
export type * from './events/account.events.js';
export type * from './events/resend.events.js';
export * from './event-schemas.js';
export * from './sender-authorisation.js';
