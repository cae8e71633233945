import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { EVENT_SCHEMAS } from './event-schemas.js';
import type { JsonSchema } from './event-schemas.js';
import { EVENT_EXAMPLES as EXAMPLES } from './event-examples.js';
import { EVENT_TYPES } from './event-types.js';
import type { EventType } from './event-types.js';

type Json = Record<string, unknown>;

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
