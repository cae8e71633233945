import type { EventEnvelope } from '../envelope.js';

/** How the sender proved it may relay. */
export type RelayAuthMethod = 'smtp-auth' | 'ip-allow-list';

/** A message accepted at the SMTP edge: its body is in the spool and the client got 250. */
export type MessageReceived = EventEnvelope<
  'MessageReceived',
  {
    /** Envelope sender (MAIL FROM); empty string for the null reverse-path. */
    readonly mailFrom: string;
    /** Envelope recipients (RCPT TO), in the order given. */
    readonly recipients: readonly string[];
    /** Address in the From header, and its display name when present. */
    readonly from: string;
    readonly fromName?: string;
    readonly subject?: string;
    /** The Message-ID header (without angle brackets). */
    readonly headerMessageId: string;
    /** Size in octets of the stored message, after the relay's trace headers. */
    readonly size: number;
    /** Claim check: where the spool keeps the body. */
    readonly spoolKey: string;
    readonly clientIp: string;
    readonly auth: RelayAuthMethod;
    /** SMTP AUTH username, when `auth` is smtp-auth. */
    readonly username?: string;
    readonly tls: boolean;
    /** The client asked for SMTPUTF8 / BODY=8BITMIME; delivery passes both on. */
    readonly smtpUtf8: boolean;
    readonly eightBitMime: boolean;
  }
>;

export type RelayDeniedReason = 'not-authenticated' | 'from-not-allowed';

/** A client was refused relaying. accountId is null when no account matched the client. */
export type RelayDenied = EventEnvelope<
  'RelayDenied',
  {
    readonly reason: RelayDeniedReason;
    readonly clientIp: string;
    readonly mailFrom: string;
    readonly recipients: readonly string[];
    /** From header address and display name (from-not-allowed only). */
    readonly from?: string;
    readonly fromName?: string;
    readonly subject?: string;
  }
>;

export type SuppressionList = 'bounce' | 'unsubscribe';

/** A recipient was on one of the account's suppression lists; nothing was sent to it. */
export type Suppressed = EventEnvelope<
  'Suppressed',
  {
    readonly recipient: string;
    readonly list: SuppressionList;
    readonly mailFrom: string;
    readonly from: string;
    readonly spoolKey: string;
  }
>;

export interface Usage {
  readonly messages: number;
  readonly bytes: number;
}
export interface Limits {
  /** Null means unlimited. */
  readonly messages: number | null;
  readonly bytes: number | null;
}

/** Recipients of a message held back because the account is over its monthly quota without overage. */
export type QuotaExceeded = EventEnvelope<
  'QuotaExceeded',
  {
    readonly recipients: readonly string[];
    readonly mailFrom: string;
    readonly from: string;
    readonly size: number;
    readonly spoolKey: string;
    /** Calendar month (UTC) the decision counted against, as YYYY-MM. */
    readonly period: string;
    readonly usage: Usage;
    readonly limits: Limits;
    /** Carried so that a resend can deliver the message as it was submitted. */
    readonly smtpUtf8: boolean;
    readonly eightBitMime: boolean;
    /** Set when a resend's recipients were held back again. */
    readonly resendId?: string;
  }
>;

/** Recipients cleared by policy for delivery; each counts one message and `size` bytes of quota. */
export type MessageQueued = EventEnvelope<
  'MessageQueued',
  {
    readonly recipients: readonly string[];
    readonly mailFrom: string;
    readonly size: number;
    readonly spoolKey: string;
    readonly period: string;
    readonly smtpUtf8: boolean;
    readonly eightBitMime: boolean;
    /** When the ingress accepted the message (MessageReceived.occurredAt): delivery latency and expiry count from it. */
    readonly receivedAt: string;
    /** Set when the recipients were queued by a resend. */
    readonly resendId?: string;
  }
>;

/** The recipient's server accepted the message. */
export type Delivered = EventEnvelope<
  'Delivered',
  {
    readonly recipient: string;
    /** The host that accepted it (MX or smart host), and its reply line. */
    readonly mx: string;
    readonly remoteReply: string;
    readonly attempt: number;
    /** Milliseconds from acceptance at the edge to the remote 250. */
    readonly latencyMs: number;
  }
>;

/** A temporary failure; another attempt is scheduled. */
export type Deferred = EventEnvelope<
  'Deferred',
  {
    readonly recipient: string;
    readonly mx?: string;
    readonly remoteReply: string;
    readonly attempt: number;
    readonly nextAttemptAt: string;
  }
>;

export type BounceClass = 'hard' | 'soft';
export type BounceSource = 'smtp' | 'dsn' | 'expired' | 'routing';

/** A permanent failure for one recipient. */
export type Bounced = EventEnvelope<
  'Bounced',
  {
    readonly recipient: string;
    readonly bounceClass: BounceClass;
    /** Classifier category, e.g. invalid-recipient, mailbox-full, policy, expired. */
    readonly category: string;
    /** RFC 3463 enhanced status code, e.g. 5.1.1. */
    readonly status: string;
    readonly diagnostic: string;
    readonly source: BounceSource;
    readonly mx?: string;
    readonly attempt: number;
  }
>;

export type NotificationReason =
  'suppressed-bounce' | 'suppressed-unsubscribe' | 'relay-denied' | 'bounced' | 'quota-exceeded';

/** The relay mailed the sender about a message (suppression, relay denied, bounce, quota). */
export type NotificationSent = EventEnvelope<
  'NotificationSent',
  {
    readonly reason: NotificationReason;
    /** Where the notification went. */
    readonly notified: string;
    /** The recipient(s) of the original message the notification is about. */
    readonly recipients: readonly string[];
    readonly notificationMessageId: string;
  }
>;

/** A held-back message handed to the policy stage again by a resend. */
export type MessageResubmitted = EventEnvelope<
  'MessageResubmitted',
  {
    readonly resendId: string;
    readonly recipients: readonly string[];
    readonly mailFrom: string;
    readonly from: string;
    readonly size: number;
    readonly spoolKey: string;
    readonly smtpUtf8: boolean;
    readonly eightBitMime: boolean;
    /** The QuotaExceeded event this resubmits. */
    readonly quotaExceededEventId: string;
  }
>;
