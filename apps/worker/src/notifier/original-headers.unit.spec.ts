import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readHeaderBlock, rebuiltHeaderBlock, subjectOf } from './original-headers.js';

const chunks = (...parts: string[]): Readable => Readable.from(parts.map((p) => Buffer.from(p)));

describe('readHeaderBlock', () => {
  it('stops at the empty line, even when it straddles two chunks', async () => {
    const block = await readHeaderBlock(
      chunks('From: a@b.example\r\nSubject: Hi\r', '\n\r', '\nthe body\r\n'),
    );
    expect(block.toString()).toBe('From: a@b.example\r\nSubject: Hi\r\n');
  });

  it('takes a message without a body whole', async () => {
    expect((await readHeaderBlock(chunks('From: a@b.example\r\n'))).toString()).toBe('From: a@b.example\r\n');
  });

  it('cuts a huge header block after its last whole line', async () => {
    const line = `X-Filler: ${'x'.repeat(1000)}\r\n`;
    const block = await readHeaderBlock(chunks(...Array<string>(100).fill(line)));
    expect(block.length).toBeLessThanOrEqual(64 * 1024);
    expect(block.toString().endsWith('\r\n')).toBe(true);
    expect(block.length % line.length).toBe(0);
  });
});

describe('subjectOf', () => {
  it('unfolds and decodes the Subject', () => {
    expect(subjectOf(Buffer.from('From: x\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n and more\r\n'))).toBe(
      'Grüße and more',
    );
    expect(subjectOf(Buffer.from('From: x\r\n'))).toBeUndefined();
  });
});

describe('rebuiltHeaderBlock', () => {
  it('writes From and Subject, quoting and encoding the display name as needed', () => {
    expect(
      rebuiltHeaderBlock({ from: 'ceo@other.example', fromName: 'Doe, Jane', subject: 'Hi' }).toString(),
    ).toBe('From: "Doe, Jane" <ceo@other.example>\r\nSubject: Hi\r\n');
    expect(rebuiltHeaderBlock({ from: 'a@b.example', fromName: 'Jürgen' }).toString()).toBe(
      'From: =?UTF-8?Q?J=C3=BCrgen?= <a@b.example>\r\n',
    );
  });

  it('cannot be made to add a header', () => {
    const block = rebuiltHeaderBlock({
      from: 'a@b.example',
      subject: 'Hi\r\nBcc: victim@example.org',
    }).toString();
    expect(block).toBe('From: <a@b.example>\r\nSubject: Hi Bcc: victim@example.org\r\n');
  });
});
