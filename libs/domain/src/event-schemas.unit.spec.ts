import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { EVENT_SCHEMAS } from './event-schemas.js';
import type { JsonSchema } from './event-schemas.js';
import { EVENT_TYPES, createEvent } from './event-types.js';
import type { EventOfType, EventType } from './event-types.js';

type Json = Record<string, unknown>;

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
 * One event per type, and the examples docs/events.md shows (a test below keeps them equal). Each
 * fills in every optional field too, so that the field test below sees the whole shape. They
 * follow one message: held over quota, resent after the plan was raised, delivered, opened,
 * clicked and unsubscribed from; its second recipient is on the bounce list since earlier mail.
 */
const EXAMPLES: { readonly [T in EventType]: EventOfType<T> } = {
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

const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
// ajv-formats is not installed: register the two formats the schemas use.
ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
ajv.addFormat('date-time', {
  type: 'string',
  validate: (value) =>
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(value) &&
    !Number.isNaN(Date.parse(value)),
});

const validators = new Map<EventType, ValidateFunction>(
  EVENT_TYPES.map((type) => [type, ajv.compile(EVENT_SCHEMAS[type])]),
);

function validates(type: EventType, event: unknown): boolean {
  const validate = validators.get(type);
  if (validate === undefined) throw new Error(`no validator for ${type}`);
  return validate(event);
}

/** A mutable deep copy of the example, to spoil one field at a time. */
function copyOf(type: EventType): Json & { data: Json } {
  return JSON.parse(JSON.stringify(EXAMPLES[type])) as Json & { data: Json };
}

function without(value: Json, key: string): Json {
  return Object.fromEntries(Object.entries(value).filter(([name]) => name !== key));
}

function objectAt(schema: JsonSchema, key: string): JsonSchema {
  const properties = schema['properties'] as Record<string, JsonSchema>;
  const property = properties[key];
  if (property === undefined) throw new Error(`schema has no property ${key}`);
  return property;
}

function dataSchema(type: EventType): JsonSchema {
  return objectAt(EVENT_SCHEMAS[type], 'data');
}

/** Dotted paths of every property, nested objects included: `usage`, `usage.messages`. */
function propertyPaths(schema: JsonSchema, prefix = ''): string[] {
  const properties = (schema['properties'] ?? {}) as Record<string, JsonSchema>;
  return Object.entries(properties).flatMap(([key, property]) => [
    prefix + key,
    ...propertyPaths(property, `${prefix}${key}.`),
  ]);
}

/** Dotted paths of every key of a value, nested objects (not arrays) included. */
function valuePaths(value: unknown, prefix = ''): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  return Object.entries(value).flatMap(([key, inner]) => [
    prefix + key,
    ...valuePaths(inner, `${prefix}${key}.`),
  ]);
}

describe('EVENT_SCHEMAS', () => {
  it('has a schema for exactly the types of EVENT_TYPES', () => {
    expect(Object.keys(EVENT_SCHEMAS).sort()).toEqual([...EVENT_TYPES].sort());
  });

  describe.each(EVENT_TYPES)('%s', (type) => {
    it('accepts the example event', () => {
      expect(validates(type, EXAMPLES[type])).toBe(true);
    });

    it('names exactly the data fields of the type', () => {
      expect(propertyPaths(dataSchema(type)).sort()).toEqual(valuePaths(EXAMPLES[type].data).sort());
    });

    it('rejects another type or version', () => {
      const otherType = EVENT_TYPES.find((other) => other !== type);
      expect(validates(type, { ...copyOf(type), type: otherType })).toBe(false);
      expect(validates(type, { ...copyOf(type), type: type.toLowerCase() })).toBe(false);
      expect(validates(type, { ...copyOf(type), version: EXAMPLES[type].version + 1 })).toBe(false);
    });

    it.each((dataSchema(type)['required'] as string[]).map((field) => [field]))(
      'rejects data without %s',
      (field) => {
        const event = copyOf(type);
        expect(validates(type, { ...event, data: without(event.data, field) })).toBe(false);
      },
    );

    it('rejects an extra or misspelt data field', () => {
      const event = copyOf(type);
      expect(validates(type, { ...event, data: { ...event.data, unexpected: true } })).toBe(false);
      const [first] = Object.keys(event.data);
      if (first === undefined) throw new Error('example has no data');
      const misspelt = { ...without(event.data, first), [`${first}s`]: event.data[first] };
      expect(validates(type, { ...event, data: misspelt })).toBe(false);
    });

    it('rejects a malformed envelope', () => {
      expect(validates(type, { ...copyOf(type), id: 'not-a-uuid' })).toBe(false);
      expect(validates(type, { ...copyOf(type), occurredAt: '2025-03-14T10:26:53.120+01:00' })).toBe(false);
      expect(validates(type, { ...copyOf(type), causationId: 'not-a-uuid' })).toBe(false);
      expect(validates(type, { ...copyOf(type), extra: 1 })).toBe(false);
    });

    it('allows a null accountId only for RelayDenied', () => {
      expect(validates(type, { ...copyOf(type), accountId: null })).toBe(type === 'RelayDenied');
    });
  });

  it('requires messageId on events about one message', () => {
    const aboutOneMessage = EVENT_TYPES.filter((type) =>
      (EVENT_SCHEMAS[type]['required'] as string[]).includes('messageId'),
    );
    expect(aboutOneMessage).toEqual([
      'MessageReceived',
      'Suppressed',
      'QuotaExceeded',
      'MessageQueued',
      'Delivered',
      'Deferred',
      'Bounced',
      'Opened',
      'Clicked',
      'Unsubscribed',
      'MessageResubmitted',
    ]);
    for (const type of aboutOneMessage) {
      expect(validates(type, without(copyOf(type), 'messageId'))).toBe(false);
    }
  });
});

describe('docs/events.md', () => {
  let cached: Map<string, string> | undefined;

  /** Each `## ` heading with the text under it; the file is read on first use, not at collection. */
  function sections(): Map<string, string> {
    cached ??= new Map(
      readFileSync(new URL('../../../docs/events.md', import.meta.url), 'utf8')
        .split(/^## /m)
        .slice(1)
        .map((text): [string, string] => {
          const newline = text.indexOf('\n');
          return [text.slice(0, newline).trim(), text.slice(newline + 1)];
        }),
    );
    return cached;
  }

  function section(heading: string): string {
    const body = sections().get(heading);
    if (body === undefined) throw new Error(`docs/events.md has no "## ${heading}"`);
    return body;
  }

  /** The JSON code blocks of a section, parsed. */
  function jsonBlocks(body: string): unknown[] {
    return [...body.matchAll(/^```json\n([\s\S]*?)^```$/gm)].map(
      (match) => JSON.parse(match[1] ?? '') as unknown,
    );
  }

  function tableRows(body: string): string[] {
    return [...body.matchAll(/^\| `([^`]+)` *\|/gm)].map((match) => match[1] ?? '');
  }

  it('has a section per type, in the order of EVENT_TYPES', () => {
    const typeHeadings = [...sections().keys()].filter((heading) =>
      (EVENT_TYPES as readonly string[]).includes(heading),
    );
    expect(typeHeadings).toEqual([...EVENT_TYPES]);
  });

  it('describes every envelope field', () => {
    expect(tableRows(section('Envelope'))).toEqual(
      expect.arrayContaining(Object.keys(EVENT_SCHEMAS.MessageReceived['properties'] as Json)),
    );
  });

  describe.each(EVENT_TYPES)('## %s', (type) => {
    it('has a table row for every data field', () => {
      expect(tableRows(section(type)).sort()).toEqual(propertyPaths(dataSchema(type)).sort());
    });

    it('shows the example event, then the JSON Schema', () => {
      expect(jsonBlocks(section(type))).toEqual([
        JSON.parse(JSON.stringify(EXAMPLES[type])),
        JSON.parse(JSON.stringify(EVENT_SCHEMAS[type])),
      ]);
    });
  });
});
