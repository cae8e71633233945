import { describe, expect, it } from 'vitest';
import { iconv } from './cjs-modules.js';
import { textCodecFor } from './text-codec.js';

describe('textCodecFor', () => {
  it('handles ASCII-compatible charsets byte for byte, even invalid sequences', () => {
    for (const charset of [
      false,
      'us-ascii',
      'UTF-8',
      'utf8',
      'ISO-8859-1',
      'iso-8859-15',
      'windows-1252',
      'koi8-r',
    ] as const) {
      const codec = textCodecFor(charset);
      expect(codec?.byteTransparent).toBe(true);
      const bytes = Buffer.from([0x61, 0xe9, 0xff, 0xc3, 0x28, 0x0d, 0x0a]);
      expect(codec?.encode(codec.decode(bytes), false)?.equals(bytes)).toBe(true);
    }
  });

  it('gives tokens the Unicode URL of a byte-transparent part', () => {
    const utf8 = textCodecFor('utf-8');
    expect(utf8?.toUnicode(Buffer.from('https://a.example/café', 'utf8').toString('latin1'))).toBe(
      'https://a.example/café',
    );
    const latin1 = textCodecFor('iso-8859-1');
    expect(latin1?.toUnicode(Buffer.from('https://a.example/café', 'latin1').toString('latin1'))).toBe(
      'https://a.example/café',
    );
  });

  it('decodes and re-encodes Shift_JIS and ISO-2022-JP', () => {
    const text = '表示ソフト能力予定 https://a.example/ テスト';
    const sjis = textCodecFor('Shift_JIS');
    expect(sjis?.byteTransparent).toBe(false);
    const bytes = iconv.encode(text, 'shift_jis');
    expect(sjis?.decode(bytes)).toBe(text);
    expect(sjis?.encode(text, false)?.equals(bytes)).toBe(true);
    const jis = textCodecFor('iso-2022-jp');
    const encoded = jis?.encode(text, false);
    expect(encoded?.every((byte) => byte < 0x80)).toBe(true);
    expect(jis?.decode(encoded ?? Buffer.alloc(0))).toBe(text);
  });

  it('writes a character the charset lacks as a numeric reference in HTML, and refuses in text', () => {
    const sjis = textCodecFor('shift_jis');
    expect(sjis?.encode('価格 5€', true)?.equals(iconv.encode('価格 5&#8364;', 'shift_jis'))).toBe(true);
    expect(sjis?.encode('価格 5€', false)).toBeNull();
  });

  it('has no codec for a charset it cannot convert', () => {
    expect(textCodecFor('x-unknown-charset')).toBeNull();
  });
});
