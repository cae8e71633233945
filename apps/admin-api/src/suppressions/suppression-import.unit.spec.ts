import { describe, expect, it } from 'vitest';
import type { SuppressionList } from '@relay/domain';
import { CsvReader, type CsvRecord } from './suppression-csv.js';
import { isListableAddress, parseSuppressionImport, type ParsedImport } from './suppression-import.js';

async function* records(text: string): AsyncGenerator<CsvRecord> {
  const reader = new CsvReader();
  yield* reader.push(text);
  yield* reader.end();
}

const parse = (text: string, list?: SuppressionList): Promise<ParsedImport> =>
  parseSuppressionImport(records(text), { ...(list ? { list } : {}), defaultReason: 'Imported from CSV' });

describe('isListableAddress', () => {
  it.each([
    ['ada@example.org', true],
    ['Ann.Smith+tag@Example.COM', true],
    ['"quoted local"@example.org', true],
    ['zoë@bücher.example', true],
    ['ada@example', true],
    ['ada', false],
    ['@example.org', false],
    ['ada@', false],
    ['<ada@example.org>', false],
    ['Ada <ada@example.org>', false],
    ['ada@exa mple.org', false],
    [`${'a'.repeat(65)}@example.org`, false],
    // RFC 5321 4.5.3.1.3: 254 octets at most.
    [`${'a'.repeat(64)}@${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.ee.org`, true],
    [`${'a'.repeat(64)}@${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.eee.org`, false],
  ])('%s -> %s', (address, listable) => {
    expect(isListableAddress(address)).toBe(listable);
  });
});

describe('parseSuppressionImport', () => {
  it('reads address[,list][,reason] without a header', async () => {
    expect(
      await parse(
        'ada@example.org,bounce,user unknown\r\ngrace@example.net,unsubscribe\r\nbob@example.com\r\n',
      ),
    ).toEqual({
      entries: [
        { address: 'ada@example.org', list: 'bounce', reason: 'user unknown' },
        { address: 'grace@example.net', list: 'unsubscribe', reason: 'Imported from CSV' },
      ],
      repeated: 0,
      invalid: [{ line: 3, value: 'bob@example.com', error: 'no list: give ?list= or a list column' }],
      invalidCount: 1,
    });
  });

  it('puts every row on ?list= when given, whatever a list column says', async () => {
    const parsed = await parse(
      'address,list\nada@example.org,bounce\ngrace@example.net,newsletter\n',
      'unsubscribe',
    );
    expect(parsed.entries.map((e) => [e.address, e.list])).toEqual([
      ['ada@example.org', 'unsubscribe'],
      ['grace@example.net', 'unsubscribe'],
    ]);
  });

  it('finds the address column of another provider’s export by its header, and ignores the other columns', async () => {
    const mailchimp =
      'First Name,Email Address,Reason,Unsub Time\r\n' +
      'Ada,ada@example.org,"Unsubscribed, via link",2024-01-02\r\n' +
      'Grace,GRACE@example.net,,2024-01-03\r\n';
    expect((await parse(mailchimp, 'unsubscribe')).entries).toEqual([
      { address: 'ada@example.org', list: 'unsubscribe', reason: 'Unsubscribed, via link' },
      { address: 'GRACE@example.net', list: 'unsubscribe', reason: 'Imported from CSV' },
    ]);
    const sendgrid = 'created,email\n1710406800,bob@example.com\n';
    expect((await parse(sendgrid, 'bounce')).entries.map((e) => e.address)).toEqual(['bob@example.com']);
  });

  it('reads our own export back: its list and reason, not its source or time', async () => {
    const exported =
      'address,list,reason,source,created_at\r\n' +
      'grace@example.net,bounce,"550 5.1.1 ""user unknown""",bounce,2025-03-14T09:00:00.000Z\r\n' +
      'grace@example.net,unsubscribe,one-click,unsubscribe,2025-03-14T09:01:00.000Z\r\n';
    expect((await parse(exported)).entries).toEqual([
      { address: 'grace@example.net', list: 'bounce', reason: '550 5.1.1 "user unknown"' },
      { address: 'grace@example.net', list: 'unsubscribe', reason: 'one-click' },
    ]);
  });

  it('reports invalid rows by line, counts repeats by key, and passes over blank lines', async () => {
    const parsed = await parse(
      'Email\n' +
        'ada@example.org\n' +
        '\n' +
        'not an address\n' +
        ' , \n' +
        'ada@EXAMPLE.org\n' +
        'Ada@example.org\n' +
        '"multi\nline"@@example.org\n' +
        'last@example.org',
      'bounce',
    );
    expect(parsed).toEqual({
      entries: [
        { address: 'ada@example.org', list: 'bounce', reason: 'Imported from CSV' },
        { address: 'Ada@example.org', list: 'bounce', reason: 'Imported from CSV' },
        { address: 'last@example.org', list: 'bounce', reason: 'Imported from CSV' },
      ],
      repeated: 1,
      invalid: [
        { line: 4, value: 'not an address', error: 'not a valid email address' },
        { line: 8, value: 'multi\nline@@example.org', error: 'not a valid email address' },
      ],
      invalidCount: 2,
    });
  });

  it('takes a first row that is an address as data, and refuses an unknown list by name', async () => {
    const parsed = await parse('email@example.org,bounce\nx@example.org,spam\n');
    expect(parsed.entries.map((e) => e.address)).toEqual(['email@example.org']);
    expect(parsed.invalid).toEqual([
      { line: 2, value: 'x@example.org', error: 'list must be one of: bounce, unsubscribe' },
    ]);
  });

  it('reports the first 100 invalid rows and counts them all', async () => {
    const text = Array.from({ length: 250 }, (_, i) => `bad${i}`).join('\n');
    const parsed = await parse(text, 'bounce');
    expect(parsed.invalidCount).toBe(250);
    expect(parsed.invalid).toHaveLength(100);
    expect(parsed.invalid[99]).toEqual({ line: 100, value: 'bad99', error: 'not a valid email address' });
  });
});
