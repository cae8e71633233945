import { describe, expect, it } from 'vitest';
import type { SuppressionEntry } from '@relay/persistence';
import { csvField, CsvReader, readCsv, suppressionsCsv, type CsvRecord } from './suppression-csv.js';

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

async function* from<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

/** Every record of `text` when it arrives cut into pieces of `size` characters. */
function readInPieces(text: string, size: number): CsvRecord[] {
  const reader = new CsvReader();
  const records: CsvRecord[] = [];
  for (let i = 0; i < text.length; i += size) records.push(...reader.push(text.slice(i, i + size)));
  records.push(...reader.end());
  return records;
}

describe('csvField', () => {
  it.each([
    ['ada@example.org', 'ada@example.org'],
    ['550 5.1.1 user unknown, says the MX', '"550 5.1.1 user unknown, says the MX"'],
    ['"quoted"@example.org', '"""quoted""@example.org"'],
    ['two\r\nlines', '"two\r\nlines"'],
    ['', ''],
  ])('%j -> %j (RFC 4180 2.6, 2.7)', (value, field) => {
    expect(csvField(value)).toBe(field);
  });
});

describe('suppressionsCsv', () => {
  it('writes the header and one CRLF-terminated record per row', async () => {
    const rows: SuppressionEntry[] = [
      {
        address: 'grace@example.net',
        list: 'bounce',
        reason: '550 5.1.1 <grace@example.net>: "user unknown", sorry',
        source: 'bounce',
        createdAt: '2025-03-14T09:00:00.000Z',
      },
      {
        address: 'ada@example.org',
        list: 'unsubscribe',
        reason: 'one-click',
        source: 'unsubscribe',
        createdAt: '2025-03-14T09:01:00.000Z',
      },
    ];
    expect((await collect(suppressionsCsv(from(rows)))).join('')).toBe(
      'address,list,reason,source,created_at\r\n' +
        'grace@example.net,bounce,"550 5.1.1 <grace@example.net>: ""user unknown"", sorry",bounce,2025-03-14T09:00:00.000Z\r\n' +
        'ada@example.org,unsubscribe,one-click,unsubscribe,2025-03-14T09:01:00.000Z\r\n',
    );
    expect(await collect(suppressionsCsv(from([])))).toEqual(['address,list,reason,source,created_at\r\n']);
  });
});

describe('CsvReader', () => {
  const text =
    'email,list,reason\r\n' +
    'ada@example.org,bounce,"550 5.1.1, user unknown"\r\n' +
    '"grace@example.net",unsubscribe,"said ""stop""\r\nby phone"\n' +
    '\n' +
    'bob@example.com,,\r' +
    'last@example.com';

  const expected: CsvRecord[] = [
    { line: 1, fields: ['email', 'list', 'reason'] },
    { line: 2, fields: ['ada@example.org', 'bounce', '550 5.1.1, user unknown'] },
    { line: 3, fields: ['grace@example.net', 'unsubscribe', 'said "stop"\r\nby phone'] },
    { line: 5, fields: [''] },
    { line: 6, fields: ['bob@example.com', '', ''] },
    { line: 7, fields: ['last@example.com'] },
  ];

  it('reads quoted fields with commas, doubled quotes and line breaks; numbers records by starting line', () => {
    expect(readInPieces(text, text.length)).toEqual(expected);
  });

  it('reads the same records whatever the pieces the text arrives in', () => {
    for (const size of [1, 2, 3, 7, 16]) expect(readInPieces(text, size)).toEqual(expected);
  });

  it('is lenient: a stray quote is kept, text after a closing quote appended, an open quote closed at the end', () => {
    expect(readInPieces('a"b,"c"d,e\n"open', 100)).toEqual([
      { line: 1, fields: ['a"b', 'cd', 'e'] },
      { line: 2, fields: ['open'] },
    ]);
    expect(readInPieces('', 10)).toEqual([]);
    expect(readInPieces('a\r\n', 10)).toEqual([{ line: 1, fields: ['a'] }]);
  });
});

describe('readCsv', () => {
  it('decodes UTF-8 split inside a character and drops a byte order mark', async () => {
    const bytes = Buffer.from('\ufeffaddress\r\nzoë@bücher.example\r\n', 'utf8');
    const pieces = Array.from(bytes, (b) => Uint8Array.of(b));
    expect(await collect(readCsv(from(pieces)))).toEqual([
      { line: 1, fields: ['address'] },
      { line: 2, fields: ['zoë@bücher.example'] },
    ]);
  });
});
