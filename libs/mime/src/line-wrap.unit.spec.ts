import { describe, expect, it } from 'vitest';
import { wrapText, type WrapOptions } from './line-wrap.js';

const never = (): boolean => false;
const utf8Continuation = (code: number): boolean => code >= 0x80 && code <= 0xbf;
const plain = (width: number, extra: Partial<WrapOptions> = {}): WrapOptions => ({
  width,
  html: false,
  isContinuation: never,
  ...extra,
});
const html = (width: number): WrapOptions => ({ width, html: true, isContinuation: never });

/** The wrapper only ever inserts CRLF right after white space. */
const unwrap = (text: string): string => text.replace(/([ \t])\r\n/g, '$1');

describe('wrapping text/plain', () => {
  it('breaks long lines at white space, keeping the space at the end of the line', () => {
    const text = 'The quick brown fox jumps over the lazy dog and keeps running far away';
    expect(wrapText(text, plain(20)).split('\r\n')).toEqual([
      'The quick brown fox ',
      'jumps over the lazy ',
      'dog and keeps ',
      'running far away',
    ]);
  });

  it('leaves lines within the width, and everything when the width is 0', () => {
    const text = 'short line\r\nanother short one\r\n';
    expect(wrapText(text, plain(76))).toBe(text);
    const long = 'word '.repeat(300);
    expect(wrapText(long, plain(0))).toBe(long);
  });

  it('never splits a word longer than the width: it gets a line of its own', () => {
    const word = 'x'.repeat(2000);
    expect(wrapText(`before ${word} after`, plain(76)).split('\r\n')).toEqual([
      'before ',
      `${word} `,
      'after',
    ]);
  });

  it('never breaks inside leading indentation', () => {
    expect(wrapText(`        ${'y'.repeat(80)} z`, plain(40)).split('\r\n')).toEqual([
      `        ${'y'.repeat(80)} `,
      'z',
    ]);
  });

  it('counts characters, not UTF-8 octets', () => {
    const cyrillic = Buffer.from(
      'Привет мир, это строка из шестидесяти символов без переноса!',
      'utf8',
    ).toString('latin1');
    expect(wrapText(cyrillic, plain(76, { isContinuation: utf8Continuation }))).toBe(cyrillic);
    expect(wrapText(cyrillic, plain(76))).not.toBe(cyrillic);
  });

  it('never splits, joins or reorders words, and removing the inserted breaks gives the input back', () => {
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let run = 0; run < 200; run++) {
      const words: string[] = [];
      const count = Math.floor(random() * 120);
      for (let i = 0; i < count; i++) {
        const length = random() < 0.03 ? 100 : 1 + Math.floor(random() * 12);
        const separator = random() < 0.05 ? '\r\n' : random() < 0.1 ? '  ' : random() < 0.05 ? '\t' : ' ';
        words.push('w'.repeat(length) + separator);
      }
      const text = words.join('');
      const width = 10 + Math.floor(random() * 70);
      const wrapped = wrapText(text, plain(width));
      expect(unwrap(wrapped)).toBe(unwrap(text));
      expect(wrapped.split(/\s+/)).toEqual(text.split(/\s+/));
      for (const line of wrapped.split('\r\n')) {
        if (line.length > width) expect(line.trim()).not.toMatch(/\s/);
      }
    }
  });

  it('format=flowed: soft breaks, one more space with DelSp=yes, space-stuffing, quote depth kept', () => {
    const flowed = (delSp: boolean): WrapOptions => plain(30, { flowed: { delSp } });
    expect(wrapText('aaaa bbbb cccc dddd eeee ffff gggg hhhh', flowed(false)).split('\r\n')).toEqual([
      'aaaa bbbb cccc dddd eeee ffff ',
      'gggg hhhh',
    ]);
    expect(wrapText('aaaa bbbb cccc dddd eeee ffff gggg hhhh', flowed(true)).split('\r\n')).toEqual([
      'aaaa bbbb cccc dddd eeee ffff  ',
      'gggg hhhh',
    ]);
    expect(wrapText('aaaa bbbb cccc dddd eeee ffff >not a quote', flowed(false)).split('\r\n')).toEqual([
      'aaaa bbbb cccc dddd eeee ffff ',
      ' >not a quote',
    ]);
    expect(wrapText('aaaa bbbb cccc dddd eeee ffff From here', flowed(false)).split('\r\n')).toEqual([
      'aaaa bbbb cccc dddd eeee ffff ',
      ' From here',
    ]);
    expect(wrapText('>> aaaa bbbb cccc dddd eeee ffff gggg', flowed(false)).split('\r\n')).toEqual([
      '>> aaaa bbbb cccc dddd eeee ',
      '>> ffff gggg',
    ]);
  });
});

describe('wrapping text/html', () => {
  it('breaks in text but never inside a tag, even one with spaces in its attributes', () => {
    const text =
      '<p style="font-family: Arial, sans-serif; color: #333333">Some words here</p> <a href="https://x.example/a b" title="a > b">more text</a>';
    const wrapped = wrapText(text, html(30));
    expect(unwrap(wrapped)).toBe(text);
    expect(wrapped.split('\r\n')).toEqual([
      '<p style="font-family: Arial, sans-serif; color: #333333">Some ',
      'words here</p> ',
      '<a href="https://x.example/a b" title="a > b">more ',
      'text</a>',
    ]);
  });

  it('keeps <pre>, <textarea>, <script> and <style> content as it was, across lines', () => {
    const pre = '<pre>  column one    column two    column three    column four    column five</pre>';
    const style =
      '<style>td { font-family: "Segoe UI", Arial, sans-serif; padding: 0 8px 0 8px; color: #333 }</style>';
    const script = '<script>var greeting = "hello there, this is a long string that must stay";</script>';
    const textarea = '<textarea>one two three four five six seven eight nine ten eleven</textarea>';
    const text = `<div>${pre}\r\n${style}\r\n${script}\r\n${textarea}\r\nafter the blocks come some words that may wrap</div>`;
    const wrapped = wrapText(text, html(24));
    for (const block of [pre, style, script, textarea]) expect(wrapped).toContain(block);
    expect(wrapped).toContain('after the blocks come \r\nsome words that may \r\nwrap</div>');
  });

  it('keeps state across lines: a tag or a <pre> spanning lines stays whole', () => {
    const text =
      '<img src="a.png"\r\n alt="a picture of something rather long to describe" width="10">\r\n<pre>\r\nline in pre that is long enough to wrap if allowed\r\n</pre> text after the pre block goes on';
    const wrapped = wrapText(text, html(20));
    expect(wrapped).toContain(' alt="a picture of something rather long to describe" width="10">');
    expect(wrapped).toContain('\r\nline in pre that is long enough to wrap if allowed\r\n');
    expect(wrapped).toContain('</pre> text after \r\nthe pre block goes \r\non');
  });
});
