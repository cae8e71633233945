import { describe, expect, it } from 'vitest';
import { libqp } from './cjs-modules.js';
import {
  LongLineFolder,
  decodeQuotedPrintable,
  encodeQuotedPrintable,
  encodeTransfer,
  longestLineOctets,
} from './transfer-encoding.js';

let seed = 11;
function random(): number {
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
  return seed / 2 ** 31;
}

function randomContent(length: number): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < length; i++) {
    const r = random();
    if (r < 0.04) bytes.push(0x0d, 0x0a);
    else if (r < 0.15) bytes.push(0x20);
    else if (r < 0.18) bytes.push(0x09);
    else if (r < 0.2) bytes.push(0x3d);
    else if (r < 0.3) bytes.push(Math.floor(random() * 256));
    else bytes.push(0x61 + Math.floor(random() * 26));
  }
  return Buffer.from(bytes);
}

const lines = (bytes: Buffer): string[] => bytes.toString('latin1').split('\r\n');

describe('quoted-printable', () => {
  it('round-trips any content with lines of at most 76 characters, and libqp agrees', () => {
    for (let run = 0; run < 500; run++) {
      const content = randomContent(Math.floor(random() * 600));
      const encoded = encodeQuotedPrintable(content);
      expect(Math.max(0, ...lines(encoded).map((line) => line.length))).toBeLessThanOrEqual(76);
      expect(decodeQuotedPrintable(encoded).equals(content)).toBe(true);
      expect(libqp.decode(encoded.toString('latin1')).equals(content)).toBe(true);
    }
  });

  it('decodes what other encoders write: soft breaks, padding after them, lower-case hex, stray "="', () => {
    const encoded = Buffer.from('caf=c3=a9 au =  \r\nlait\r\nx=3D1 and 100% =ZZ ok   \r\nend');
    expect(decodeQuotedPrintable(encoded).toString('utf8')).toBe(
      'café au lait\r\nx=1 and 100% =ZZ ok\r\nend',
    );
  });

  it('encodes white space before a line end and never splits an escape', () => {
    expect(encodeQuotedPrintable(Buffer.from('a \r\nb\t')).toString()).toBe('a=20\r\nb=09');
    const encoded = encodeQuotedPrintable(Buffer.from('é'.repeat(60), 'utf8'));
    for (const line of lines(encoded)) expect(line).toMatch(/^(=[0-9A-F]{2})+=?$/);
  });
});

describe('base64 output', () => {
  it('has 76-character lines and a final CRLF only when asked', () => {
    const content = Buffer.alloc(1000, 7);
    const encoded = encodeTransfer(content, 'base64', true);
    const parts = lines(encoded);
    expect(parts.slice(0, -2).every((line) => line.length === 76)).toBe(true);
    expect(parts.at(-1)).toBe('');
    expect(Buffer.from(encoded.toString('latin1'), 'base64').equals(content)).toBe(true);
    expect(encodeTransfer(content, 'base64', false).toString('latin1').endsWith('\n')).toBe(false);
  });
});

describe('LongLineFolder', () => {
  const feed = (folder: LongLineFolder, input: Buffer, chunkSizes: () => number): Buffer => {
    const out: Buffer[] = [];
    for (let at = 0; at < input.length;) {
      const size = Math.max(1, chunkSizes());
      out.push(...folder.push(input.subarray(at, at + size)));
      at += size;
    }
    out.push(...folder.end());
    return Buffer.concat(out);
  };

  it('passes lines within 998 octets byte for byte, however the chunks fall', () => {
    const input = Buffer.from(`${'QUJD'.repeat(19)}\r\n`.repeat(50));
    const folder = new LongLineFolder('base64');
    expect(feed(folder, input, () => Math.floor(random() * 300)).equals(input)).toBe(true);
    expect(folder.folded).toBe(false);
  });

  it('folds a one-line base64 body at 76 and keeps the other lines', () => {
    const data = Buffer.alloc(6000);
    for (let i = 0; i < data.length; i++) data[i] = Math.floor(random() * 256);
    const oneLine = data.toString('base64');
    const input = Buffer.from(`${oneLine}\r\nQUJD\r\n${oneLine}`);
    for (const chunk of [1, 7, 76, 997, 999, 4096]) {
      const folder = new LongLineFolder('base64');
      const output = feed(folder, input, () => chunk);
      expect(folder.folded).toBe(true);
      expect(longestLineOctets(output)).toBe(76);
      expect(output.toString('latin1')).toContain('\r\nQUJD\r\n');
      expect(output.toString('latin1').replace(/\r\n/g, '')).toBe(
        input.toString('latin1').replace(/\r\n/g, ''),
      );
    }
  });

  it('folds an over-long quoted-printable line with soft breaks that decode to the same content', () => {
    const content = Buffer.from(`${'déjà vu = again, '.repeat(120)}\r\nsecond line\r\n`, 'utf8');
    const oneLine = libqp.encode(content).replace(/=0D=0A/g, '\r\n');
    const input = Buffer.from(oneLine, 'latin1');
    expect(longestLineOctets(input)).toBeGreaterThan(998);
    for (const chunk of [1, 3, 75, 1000]) {
      const output = feed(new LongLineFolder('quoted-printable'), input, () => chunk);
      expect(longestLineOctets(output)).toBeLessThanOrEqual(76);
      expect(decodeQuotedPrintable(output).equals(decodeQuotedPrintable(input))).toBe(true);
    }
  });

  it('never puts a fold between the CR and LF of a line end split over two chunks', () => {
    const line = 'A'.repeat(1100);
    const input = Buffer.from(`${line}\r\nB\r\n`);
    const folder = new LongLineFolder('quoted-printable');
    const output = Buffer.concat([
      ...folder.push(input.subarray(0, 1101)),
      ...folder.push(input.subarray(1101)),
      ...folder.end(),
    ]);
    expect(output.toString('latin1')).not.toContain('\r\n\r\n');
    expect(decodeQuotedPrintable(output).toString('latin1')).toBe(`${line}\r\nB\r\n`);
  });
});
