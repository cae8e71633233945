import { createEvent, type EventOfType, type EventType } from './event-types.js';

const ACCOUNT_ID = '3970b2cf-531e-467c-ace3-b94552d5dcf5';
const MESSAGE_ID = '5f2a9c01e4b7d3a6';
const EARLIER_MESSAGE_ID = '5e81d0c7a93f2b14';
const RESEND_ID = 'dab18976-36e3-435d-9d7c-125a9c25a991';
const SPOOL_KEY = '2025/03/14/5f2a9c01e4b7d3a6';
/** The recipient's mail client, as the tracker sees it. */
const READER = {
  recipient: 'ada@example.org',
  ip: '198.51.100.14',
  userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:136.0) Gecko/20100101 Firefox/136.0',
};

/**
 * One event per type: the examples docs/events.md shows (npm run docs:events writes them there,
 * and a test keeps the two equal). Each
 * fills in every optional field too, so that the field test below sees the whole shape. They
 * follow one message: held over quota, resent after the plan was raised, delivered, opened,
 * clicked and unsubscribed from; its second recipient is on the bounce list since earlier mail.
 */
export const EVENT_EXAMPLES: { readonly [T in EventType]: EventOfType<T> } = {
  MessageReceived: createEvent('MessageReceived', {
    id: '20c13fe6-314f-4285-bdd8-3e84806d9bea',
    occurredAt: '2025-03-14T09:26:53.120Z',
    messageId: MESSAGE_ID,
    accountId: ACCOUNT_ID,
    data: {
      mailFrom: 'bounces@mail.example.com',
      recipients: ['ada@example.org', 'grace@example.net'],
      from: 'billing@example.com',
      fromName: 'Example Billing',
      subject: 'Your invoice 2025-0314',
      headerMessageId: '20250314092653.4821@app.example.com',
      size: 48213,
      spoolKey: SPOOL_KEY,
      clientIp: '203.0.113.25',
      auth: 'smtp-auth',
      username: 'example-app',
      tls: true,
      smtpUtf8: false,
      eightBitMime: true,
    },
  }),
  RelayDenied: createEvent('RelayDenied', {
    id: '359a1988-cc1f-49ab-a038-ab8e38a0779f',
    occurredAt: '2025-03-14T09:31:10.502Z',
    accountId: ACCOUNT_ID,
    data: {
      reason: 'from-not-allowed',
      clientIp: '203.0.113.25',
      mailFrom: 'bounces@mail.example.com',
      recipients: ['ada@example.org'],
      from: 'sales@example.org',
      fromName: 'Example Sales',
      subject: 'Spring offer',
    },
  }),
  Suppressed: createEvent('Suppressed', {
    id: '3ad8a43a-7560-4db4-a47d-3dc18475e745',
    occurredAt: '2025-03-14T09:26:53.161Z',
    messageId: MESSAGE_ID,
    causationId: '20c13fe6-314f-4285-bdd8-3e84806d9bea',
    accountId: ACCOUNT_ID,
    data: {
      recipient: 'grace@example.net',
      list: 'bounce',
      mailFrom: 'bounces@mail.example.com',
      from: 'billing@example.com',
      spoolKey: SPOOL_KEY,
    },
  }),
  QuotaExceeded: createEvent('QuotaExceeded', {
    id: '9dc487df-028f-46cf-85a0-5ea770497490',
    occurredAt: '2025-03-14T09:26:53.163Z',
    messageId: MESSAGE_ID,
    causationId: '20c13fe6-314f-4285-bdd8-3e84806d9bea',
    accountId: ACCOUNT_ID,
    data: {
      recipients: ['ada@example.org'],
      mailFrom: 'bounces@mail.example.com',
      from: 'billing@example.com',
      size: 48213,
      spoolKey: SPOOL_KEY,
      period: '2025-03',
      usage: { messages: 10000, bytes: 402113877 },
      limits: { messages: 10000, bytes: null },
      smtpUtf8: false,
      eightBitMime: true,
      resendId: RESEND_ID,
    },
  }),
  MessageQueued: createEvent('MessageQueued', {
    id: '0082c654-468b-4aef-a31c-99b5611b38b2',
    occurredAt: '2025-03-14T11:03:05.871Z',
    messageId: MESSAGE_ID,
    causationId: 'a9a22297-bcc8-4067-babd-52198f425e64',
    accountId: ACCOUNT_ID,
    data: {
      recipients: ['ada@example.org'],
      mailFrom: 'bounces@mail.example.com',
      size: 48213,
      spoolKey: SPOOL_KEY,
      period: '2025-03',
      smtpUtf8: false,
      eightBitMime: true,
      receivedAt: '2025-03-14T11:03:05.612Z',
      resendId: RESEND_ID,
    },
  }),
  Delivered: createEvent('Delivered', {
    id: 'd95ffd68-aa69-4359-94d1-12271d615fbc',
    occurredAt: '2025-03-14T11:08:07.415Z',
    messageId: MESSAGE_ID,
    causationId: '0082c654-468b-4aef-a31c-99b5611b38b2',
    accountId: ACCOUNT_ID,
    data: {
      recipient: 'ada@example.org',
      mx: 'mx1.example.org',
      remoteReply: '250 2.0.0 Ok: queued as 4Q7mZk2xVt',
      attempt: 2,
      latencyMs: 6074295,
    },
  }),
  Deferred: createEvent('Deferred', {
    id: '54a6ea5a-93ed-4fa3-a864-bd26b8c89cda',
    occurredAt: '2025-03-14T11:03:06.992Z',
    messageId: MESSAGE_ID,
    causationId: '0082c654-468b-4aef-a31c-99b5611b38b2',
    accountId: ACCOUNT_ID,
    data: {
      recipient: 'ada@example.org',
      mx: 'mx1.example.org',
      remoteReply: '451 4.7.1 Greylisted, please try again later',
      attempt: 1,
      nextAttemptAt: '2025-03-14T11:08:06.992Z',
    },
  }),
  Bounced: createEvent('Bounced', {
    id: 'b3da9d96-3516-4ee3-86cd-08687f712dec',
    occurredAt: '2025-03-02T16:40:21.338Z',
    messageId: EARLIER_MESSAGE_ID,
    causationId: '9bc03c68-f9e2-4bed-b124-420c9c64d99e',
    accountId: ACCOUNT_ID,
    data: {
      recipient: 'grace@example.net',
      bounceClass: 'hard',
      category: 'invalid-recipient',
      status: '5.1.1',
      diagnostic: '550 5.1.1 <grace@example.net>: Recipient address rejected: User unknown',
      source: 'smtp',
      mx: 'mx.example.net',
      attempt: 1,
    },
  }),
  NotificationSent: createEvent('NotificationSent', {
    id: 'c0342080-6d1a-44f9-a6af-442af118ca03',
    occurredAt: '2025-03-14T09:26:54.020Z',
    messageId: MESSAGE_ID,
    causationId: '9dc487df-028f-46cf-85a0-5ea770497490',
    accountId: ACCOUNT_ID,
    data: {
      reason: 'quota-exceeded',
      notified: 'billing@example.com',
      recipients: ['ada@example.org'],
      notificationMessageId: '6b30e94fd2a18c57',
    },
  }),
  Opened: createEvent('Opened', {
    id: '3c55161c-d575-41f6-8570-8b5975a8b087',
    occurredAt: '2025-03-14T11:42:19.006Z',
    messageId: MESSAGE_ID,
    accountId: ACCOUNT_ID,
    data: {
      ...READER,
      suspectedScanner: false,
    },
  }),
  Clicked: createEvent('Clicked', {
    id: 'ec96bf75-4b83-4fc5-b7c8-6e7106253c13',
    occurredAt: '2025-03-14T11:42:47.730Z',
    messageId: MESSAGE_ID,
    accountId: ACCOUNT_ID,
    data: {
      ...READER,
      suspectedScanner: false,
      url: 'https://app.example.com/invoices/2025-0314',
    },
  }),
  Unsubscribed: createEvent('Unsubscribed', {
    id: 'b49e6e56-35ee-4763-9ced-3b687ee3f243',
    occurredAt: '2025-03-14T11:43:02.118Z',
    messageId: MESSAGE_ID,
    accountId: ACCOUNT_ID,
    data: {
      ...READER,
      method: 'one-click',
    },
  }),
  SuppressionAdded: createEvent('SuppressionAdded', {
    id: 'a0c03bde-7a1d-40e4-97e8-d62eb4bb386c',
    occurredAt: '2025-03-02T16:40:21.402Z',
    causationId: 'b3da9d96-3516-4ee3-86cd-08687f712dec',
    accountId: ACCOUNT_ID,
    data: {
      address: 'grace@example.net',
      list: 'bounce',
      source: 'bounce',
      reason: '550 5.1.1 <grace@example.net>: Recipient address rejected: User unknown',
    },
  }),
  SuppressionRemoved: createEvent('SuppressionRemoved', {
    id: '99d4fcaa-0151-429f-befe-85feac384b09',
    occurredAt: '2025-03-17T08:12:44.590Z',
    accountId: ACCOUNT_ID,
    data: { address: 'grace@example.net', list: 'bounce', source: 'admin' },
  }),
  AccountPlanChanged: createEvent('AccountPlanChanged', {
    id: '5fe32514-074e-4c83-aa5c-e23cc69433b3',
    occurredAt: '2025-03-14T11:02:30.000Z',
    accountId: ACCOUNT_ID,
    data: {
      monthlyMessageLimit: 20000,
      monthlyByteLimit: null,
      overageAllowed: false,
      previous: { monthlyMessageLimit: 10000, monthlyByteLimit: null, overageAllowed: false },
    },
  }),
  ResendRequested: createEvent('ResendRequested', {
    id: '1856bf24-64f9-4287-8265-d7aa4c6e7d33',
    occurredAt: '2025-03-14T11:03:05.604Z',
    accountId: ACCOUNT_ID,
    data: { resendId: RESEND_ID, since: '2025-03-11T11:03:05.604Z', dryRun: false },
  }),
  MessageResubmitted: createEvent('MessageResubmitted', {
    id: 'a9a22297-bcc8-4067-babd-52198f425e64',
    occurredAt: '2025-03-14T11:03:05.850Z',
    messageId: MESSAGE_ID,
    causationId: '1856bf24-64f9-4287-8265-d7aa4c6e7d33',
    accountId: ACCOUNT_ID,
    data: {
      resendId: RESEND_ID,
      recipients: ['ada@example.org'],
      mailFrom: 'bounces@mail.example.com',
      from: 'billing@example.com',
      size: 48213,
      spoolKey: SPOOL_KEY,
      smtpUtf8: false,
      eightBitMime: true,
      quotaExceededEventId: '9dc487df-028f-46cf-85a0-5ea770497490',
    },
  }),
};
