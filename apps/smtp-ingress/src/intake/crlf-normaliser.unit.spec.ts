import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { CrlfNormaliser } from './crlf-normaliser.js';

async function normalise(chunks: string[]): Promise<string> {
  const out = await buffer(
    Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))).pipe(new CrlfNormaliser()),
  );
  return out.toString('latin1');
}

describe('CrlfNormaliser', () => {
  it.each([
    ['bare LF', 'a\nb\n', 'a\r\nb\r\n'],
    ['bare CR', 'a\rb\r', 'a\r\nb\r\n'],
    ['CRLF kept', 'a\r\nb\r\n', 'a\r\nb\r\n'],
    ['LF CR is two line ends', 'a\n\rb', 'a\r\n\r\nb'],
    ['\\n.\\n', 'x\n.\nMAIL FROM:<a@b>\n', 'x\r\n.\r\nMAIL FROM:<a@b>\r\n'],
    ['\\r\\n.\\n', 'x\r\n.\nRCPT', 'x\r\n.\r\nRCPT'],
    ['\\n.\\r\\n', 'x\n.\r\nRCPT', 'x\r\n.\r\nRCPT'],
    ['\\r.\\r\\n', 'x\r.\r\nRCPT', 'x\r\n.\r\nRCPT'],
    ['8-bit bytes untouched', 'caf\xe9\n', 'caf\xe9\r\n'],
  ])('%s', async (_name, input, output) => {
    expect(await normalise([input])).toBe(output);
  });

  it('holds a CR at a chunk boundary until it sees the next byte', async () => {
    expect(await normalise(['a\r', '\nb'])).toBe('a\r\nb');
    expect(await normalise(['a\r', 'b'])).toBe('a\r\nb');
    expect(await normalise(['a\r', '\r', '\n'])).toBe('a\r\n\r\n');
    expect(await normalise(['a\r'])).toBe('a\r\n');
  });

  it('gives the same result however the input is split', async () => {
    const input = 'h: v\r\n\r\nline\nother\rthird\r\n.\n\r\r\nend';
    const whole = await normalise([input]);
    for (let size = 1; size <= 5; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < input.length; i += size) chunks.push(input.slice(i, i + size));
      expect(await normalise(chunks)).toBe(whole);
    }
    expect(whole).not.toMatch(/\r(?!\n)|(?<!\r)\n/);
  });
});
