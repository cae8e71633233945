import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  TRACKING_BASE,
  UNSUBSCRIBE_MARK,
  corpusFixtures,
  decodedText,
  flowedParagraphs,
  longestLine,
  markPlaceholders,
  mimeView,
  readFixture,
  testRenderOptions,
  untrack,
  unwrap,
  verifyDkim,
  type LeafPart,
  type MimeView,
} from './fixtures/corpus.js';
import { generateDkimKeys, type DkimKey } from './dkim-keys.js';
import { renderMessage, type RenderOptions, type RenderSummary } from './render-message.js';

let keys: DkimKey[];
beforeAll(async () => {
  keys = await generateDkimKeys({ domain: 'shop.example', selector: 'relay1', ed25519: true });
});

function options(overrides: Partial<RenderOptions> = {}): RenderOptions {
  return testRenderOptions(keys, overrides);
}

async function render(
  message: Buffer,
  overrides: Partial<RenderOptions> = {},
): Promise<{ output: Buffer; summary: RenderSummary }> {
  let summary: RenderSummary | undefined;
  const output = await buffer(
    renderMessage(Readable.from([message]), { ...options(overrides), onRendered: (s) => (summary = s) }),
  );
  if (summary === undefined) throw new Error('onRendered was not called');
  return { output, summary };
}

/** The root header block of `output`, split into the fields the renderer added and the rest. */
function splitAddedFields(output: Buffer): { added: string[]; rest: Buffer } {
  const text = output.toString('latin1');
  const added: string[] = [];
  let at = 0;
  for (;;) {
    const match = /^(DKIM-Signature|List-Unsubscribe|List-Unsubscribe-Post):[^\n]*\n(?:[ \t][^\n]*\n)*/.exec(
      text.slice(at),
    );
    if (match === null) break;
    added.push(match[0]);
    at += match[0].length;
  }
  return { added, rest: output.subarray(at) };
}

const isBodyText = (part: LeafPart): boolean =>
  (part.contentType === 'text/plain' || part.contentType === 'text/html') &&
  part.disposition !== 'attachment';

/** Which header bytes may differ: only the Content-Transfer-Encoding field. */
const withoutCte = (header: Buffer): string =>
  header.toString('latin1').replace(/^content-transfer-encoding[ \t]*:[^\n]*\n(?:[ \t][^\n]*\n)*/im, '');

describe.each(corpusFixtures())('rendering %s', (fixture) => {
  let input: Buffer;
  let output: Buffer;
  let summary: RenderSummary;
  let before: MimeView;
  let after: MimeView;
  beforeAll(async () => {
    input = readFixture(fixture);
    ({ output, summary } = await render(input));
    before = await mimeView(input);
    after = await mimeView(splitAddedFields(output).rest);
  });

  it('carries an RSA and an Ed25519 DKIM signature that mailauth verifies', async () => {
    const results = await verifyDkim(output, keys);
    expect(results.map((r) => [r.selector, r.result])).toEqual([
      ['relay1', 'pass'],
      ['relay1-ed25519', 'pass'],
    ]);
    expect(summary.signatures).toEqual([
      'shop.example/relay1/rsa-sha256',
      'shop.example/relay1-ed25519/ed25519-sha256',
    ]);
  });

  it('adds DKIM-Signature and List-Unsubscribe fields in front of the untouched root header', () => {
    const { added, rest } = splitAddedFields(output);
    expect(added.map((field) => field.slice(0, field.indexOf(':')))).toEqual([
      'DKIM-Signature',
      'DKIM-Signature',
      'List-Unsubscribe',
      'List-Unsubscribe-Post',
    ]);
    expect(added[3]).toBe('List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n');
    const rootHeader = before.multipartHeaders[0] ?? before.leaves[0]?.header;
    const renderedRootHeader = after.multipartHeaders[0] ?? after.leaves[0]?.header;
    if (rootHeader === undefined || renderedRootHeader === undefined) throw new Error('no root');
    if (after.multipartHeaders.length > 0 || renderedRootHeader.equals(rootHeader)) {
      expect(rest.subarray(0, rootHeader.length).equals(rootHeader)).toBe(true);
    } else {
      // A single-part message whose one part had to become quoted-printable.
      expect(withoutCte(renderedRootHeader)).toBe(withoutCte(rootHeader));
    }
    const signed = added.slice(0, 2).join('');
    for (const name of [
      'from',
      'to',
      'subject',
      'date',
      'message-id',
      'mime-version',
      'content-type',
      'list-unsubscribe',
      'list-unsubscribe-post',
    ]) {
      expect(signed.replace(/\r\n[ \t]/g, ' ').toLowerCase()).toMatch(new RegExp(`h=[^;]*\\b${name}\\b`));
    }
  });

  it('keeps boundaries, preamble, epilogue, multipart headers and every untouched part byte for byte', () => {
    expect(after.data.map((d) => d.toString('latin1'))).toEqual(before.data.map((d) => d.toString('latin1')));
    expect(after.multipartHeaders.slice(1)).toEqual(before.multipartHeaders.slice(1));
    expect(after.leaves.length).toBe(before.leaves.length);
    before.leaves.forEach((part, index) => {
      const rendered = after.leaves[index] as LeafPart;
      expect(rendered.contentType).toBe(part.contentType);
      if (rendered.body.equals(part.body)) {
        if (!part.root) expect(rendered.header.equals(part.header)).toBe(true);
        return;
      }
      expect(part.signed).toBe(false);
      // Only body text parts change, and other parts only when they broke the 998 rule.
      if (!isBodyText(part)) expect(longestLine(part.body)).toBeGreaterThan(998);
    });
  });

  it('re-encodes a changed part in its own transfer encoding and charset, saying what it said plus tracking', () => {
    before.leaves.forEach((part, index) => {
      const rendered = after.leaves[index] as LeafPart;
      if (rendered.body.equals(part.body)) return;
      expect(rendered.charset).toBe(part.charset);
      if (rendered.encoding !== part.encoding) {
        // The 998 rule: a part sent as is that would carry an over-long line.
        expect(['', '7bit', '8bit', 'binary']).toContain(part.encoding);
        expect(['quoted-printable', 'base64']).toContain(rendered.encoding);
        if (!part.root) expect(withoutCte(rendered.header)).toBe(withoutCte(part.header));
      } else if (!part.root) {
        expect(rendered.header.equals(part.header)).toBe(true);
      }
      if (!part.contentType.startsWith('text/')) {
        expect(decodedBytes(rendered).equals(decodedBytes(part))).toBe(true);
        return;
      }
      let original = markPlaceholders(decodedText(part));
      let text = untrack(decodedText(rendered)).text;
      if (part.flowed) {
        const paragraphs = (value: string): string =>
          flowedParagraphs(value, part.delSp)
            .map((p) => `${p.depth}|${p.text}`)
            .join('\n');
        [text, original] = [paragraphs(text), paragraphs(original)];
      } else if (part.contentType === 'text/html') {
        [text, original] = [text.replace(/&amp;/g, '&'), original.replace(/&amp;/g, '&')];
      }
      expect(unwrap(text)).toBe(unwrap(original));
      // Words are never split, joined or reordered.
      expect(text.split(/\s+/)).toEqual(original.split(/\s+/));
    });
  });

  it('sends no line longer than 998 octets', () => {
    expect(longestLine(output)).toBeLessThanOrEqual(998);
  });

  it('wraps 7bit/8bit text at 76 columns except where no break is allowed', () => {
    after.leaves.forEach((part) => {
      if (!isBodyText(part) || part.signed || !['', '7bit', '8bit'].includes(part.encoding)) return;
      const text = decodedText(part);
      for (const line of text.split('\r\n')) {
        if ([...line].length <= 76) continue;
        if (part.contentType === 'text/plain') {
          // Only a line whose words after the first cannot fit: one long word, or indentation plus one.
          expect(line.trim()).not.toMatch(/\s/);
        }
      }
    });
  });
});

function decodedBytes(part: LeafPart): Buffer {
  return part.encoding === 'base64' ? Buffer.from(part.body.toString('latin1'), 'base64') : part.body;
}

describe('rendering the corpus with nothing to do', () => {
  it.each(corpusFixtures())(
    'leaves %s byte for byte as it was, unless a line breaks the 998 rule',
    async (fixture) => {
      const input = readFixture(fixture);
      const { output, summary } = await render(input, {
        wrapWidth: 0,
        tracking: { opens: false, clicks: false },
        listUnsubscribe: false,
        dkim: undefined,
      });
      if (
        longestLine(input) <= 998 &&
        !markPlaceholders(input.toString('latin1')).includes(UNSUBSCRIBE_MARK)
      ) {
        expect(output.equals(input)).toBe(true);
        expect(summary.partsRewritten).toBe(0);
      } else {
        expect(longestLine(output)).toBeLessThanOrEqual(998);
      }
    },
  );
});

describe('specific messages', () => {
  it('tracks the links of a quoted-printable HTML part but not mailto:, tel:, #anchors or a link whose text is a URL', async () => {
    const { output, summary } = await render(readFixture('alternative-qp-html.eml'));
    const view = await mimeView(splitAddedFields(output).rest);
    const [plain, html] = view.leaves;
    if (plain === undefined || html === undefined) throw new Error('parts missing');
    expect(html.encoding).toBe('quoted-printable');
    expect(longestLine(html.body)).toBeLessThanOrEqual(76);
    const tracked = untrack(decodedText(html));
    expect(tracked.clicks).toEqual([
      'https://shop.example/spring?utm_source=newsletter&utm_medium=email',
      'https://shop.example/account',
      'https://shop.example/map-area',
    ]);
    expect(tracked.pixels).toBe(1);
    const htmlText = decodedText(html);
    expect(htmlText).toContain(
      '<a href="https://shop.example/newsletter/2026-03">https://shop.example/newsletter/2026-03</a>',
    );
    expect(htmlText).toContain('href="mailto:help@shop.example"');
    expect(htmlText).toContain('href="tel:+15555550100"');
    expect(htmlText).toContain('href="#top"');
    expect(htmlText).toMatch(
      /<img src="[^"]+\/o\.z\?[^"]+" width="1" height="1" alt="" style="display:none;border:0"><\/body>/,
    );
    // Plain text: every bare URL, without the sentence's punctuation.
    const plainTracked = untrack(decodedText(plain));
    expect(plainTracked.clicks).toEqual([
      'https://shop.example/spring?utm_source=newsletter&utm_medium=email',
      'https://shop.example/newsletter/2026-03',
    ]);
    expect(summary).toMatchObject({ clicks: 5, urlTextLinksLeft: 1, openPixels: 1, unsubscribeLinks: 0 });
  });

  it('tracks a link whose text is a URL when the account asks for it', async () => {
    const { output } = await render(readFixture('alternative-qp-html.eml'), {
      tracking: { opens: false, clicks: true, trackUrlTextLinks: true },
    });
    const view = await mimeView(splitAddedFields(output).rest);
    const tracked = untrack(decodedText(view.leaves[1] as LeafPart));
    expect(tracked.clicks).toContain('https://shop.example/newsletter/2026-03');
    expect(tracked.pixels).toBe(0);
  });

  it('keeps base64 HTML in base64 with 76-character lines and puts the pixel before </BODY>', async () => {
    const { output } = await render(readFixture('base64-html.eml'));
    const [html] = (await mimeView(splitAddedFields(output).rest)).leaves;
    if (html === undefined) throw new Error('no part');
    expect(html.encoding).toBe('base64');
    const lines = html.body.toString('latin1').split('\r\n').filter(Boolean);
    expect(lines.slice(0, -1).every((line) => line.length === 76)).toBe(true);
    expect(decodedText(html)).toMatch(
      /<img src="[^"]+" width="1" height="1" alt="" style="display:none;border:0"><\/BODY><\/html>/,
    );
    expect(decodedText(html)).toContain('Ünïcödé ✓');
  });

  it('keeps the inline images of multipart/related and the attachments of multipart/mixed byte for byte', async () => {
    for (const fixture of ['related-inline-images.eml', 'mixed-attachments.eml']) {
      const input = readFixture(fixture);
      const { output } = await render(input);
      const before = await mimeView(input);
      const after = await mimeView(splitAddedFields(output).rest);
      const binary = before.leaves.filter((part) => !isBodyText(part));
      expect(binary.map((part) => part.contentType)).toEqual(
        fixture === 'related-inline-images.eml'
          ? ['image/png', 'image/png']
          : ['application/pdf', 'application/zip', 'text/csv'],
      );
      before.leaves.forEach((part, index) => {
        if (isBodyText(part)) return;
        expect(after.leaves[index]?.header.equals(part.header)).toBe(true);
        expect(after.leaves[index]?.body.equals(part.body)).toBe(true);
      });
    }
  });

  it('never breaks a line inside an HTML tag, <pre> or <style>', async () => {
    const input = readFixture('mixed-attachments.eml');
    const { output } = await render(input);
    const html = (await mimeView(splitAddedFields(output).rest)).leaves.find(
      (part) => part.contentType === 'text/html',
    );
    const original = (await mimeView(input)).leaves.find((part) => part.contentType === 'text/html');
    if (html === undefined || original === undefined) throw new Error('no html');
    expect(html.encoding).toBe('7bit');
    const text = decodedText(html);
    const tagsOnOneLine = (value: string): string[] => value.match(/<[^<>\n]*>/g) ?? [];
    const untracked = untrack(text).text;
    expect(tagsOnOneLine(untracked).length).toBe(tagsOnOneLine(decodedText(original)).length);
    const blocks = (value: string, name: string): string[] =>
      value.match(new RegExp(`<${name}[\\s\\S]*?</${name}>`, 'g')) ?? [];
    expect(blocks(text, 'pre')).toEqual(blocks(decodedText(original), 'pre'));
    expect(blocks(text, 'style')).toEqual(blocks(decodedText(original), 'style'));
    expect(text.split('\r\n').some((line) => line.length > 76 && line.startsWith('<pre>'))).toBe(true);
  });

  it('keeps ISO-8859-1 bytes as they were and quoted-printable text in quoted-printable', async () => {
    const input = readFixture('latin1.eml');
    const { output } = await render(input);
    const [plain, html] = (await mimeView(splitAddedFields(output).rest)).leaves;
    if (plain === undefined || html === undefined) throw new Error('parts missing');
    expect(plain.encoding).toBe('quoted-printable');
    expect(plain.body.toString('latin1')).toContain('Jos=E9');
    expect(html.encoding).toBe('8bit');
    expect(html.body.includes(Buffer.from('Jos\xe9', 'latin1'))).toBe(true);
    expect(decodedText(html)).toContain('délais de livraison');
  });

  it('tracks Shift_JIS and ISO-2022-JP text without touching a character', async () => {
    const { output } = await render(readFixture('shift-jis.eml'));
    const [plain, html] = (await mimeView(splitAddedFields(output).rest)).leaves;
    if (plain === undefined || html === undefined) throw new Error('parts missing');
    expect(plain.charset).toBe('Shift_JIS');
    expect(html.encoding).toBe('base64');
    const plainText = untrack(decodedText(plain));
    expect(plainText.clicks).toEqual(['https://shop.example.jp/track/5501']);
    expect(unwrap(plainText.text)).toContain(
      '確認いただけます：https://shop.example.jp/track/5501 ご不明な点',
    );
    const htmlText = untrack(decodedText(html));
    expect(htmlText.text).toContain('表（ひょう）ソ能予');
    expect(htmlText.clicks).toEqual(['https://shop.example.jp/track/5501']);

    const jis = await render(readFixture('iso-2022-jp.eml'));
    const [part] = (await mimeView(splitAddedFields(jis.output).rest)).leaves;
    if (part === undefined) throw new Error('no part');
    expect(part.encoding).toBe('7bit');
    expect(part.body.every((byte) => byte < 0x80)).toBe(true);
    expect(unwrap(untrack(decodedText(part)).text)).toContain(
      '詳細は https://support.example.jp/faq/12 をご覧ください。',
    );
  });

  it('turns over-long lines into quoted-printable or base64 and folds a one-line base64 attachment', async () => {
    const input = readFixture('long-line.eml');
    const { output, summary } = await render(input);
    const before = await mimeView(input);
    const after = await mimeView(splitAddedFields(output).rest);
    expect(after.leaves.map((part) => part.encoding)).toEqual([
      'quoted-printable',
      'quoted-printable',
      'base64',
      'base64',
    ]);
    const [plain, html, dump, pdf] = after.leaves;
    if (plain === undefined || html === undefined || dump === undefined || pdf === undefined)
      throw new Error('parts missing');
    expect(decodedText(plain)).toContain(`\r\n${'x'.repeat(2000)}\r\n`);
    expect(untrack(decodedText(html)).clicks).toEqual(['https://shop.example/all']);
    expect(
      Buffer.from(dump.body.toString('latin1'), 'base64').equals(before.leaves[2]?.body ?? Buffer.alloc(0)),
    ).toBe(true);
    expect(pdf.header.equals(before.leaves[3]?.header ?? Buffer.alloc(0))).toBe(true);
    expect(longestLine(pdf.body)).toBe(76);
    expect(
      Buffer.from(pdf.body.toString('latin1'), 'base64').equals(
        Buffer.from(before.leaves[3]?.body.toString('latin1') ?? '', 'base64'),
      ),
    ).toBe(true);
    expect(summary).toMatchObject({ partsReencoded: 3, partsFolded: 1 });
  });

  it('changes the Content-Transfer-Encoding field of a single-part message in place for the 998 rule', async () => {
    const input = Buffer.from(
      'From: a@shop.example\r\nTo: b@recipient.example\r\nSubject: one line\r\nContent-Type: text/plain; charset=utf-8\r\n' +
        `Content-Transfer-Encoding: 8bit\r\nX-Trace: kept\r\n\r\n${'é'.repeat(600)}\r\n`,
    );
    const { output, summary } = await render(input);
    const { rest } = splitAddedFields(output);
    expect(rest.toString('latin1')).toMatch(
      /^From: a@shop\.example\r\nTo: b@recipient\.example\r\nSubject: one line\r\nContent-Type: text\/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\nX-Trace: kept\r\n\r\n=C3=A9/,
    );
    const [part] = (await mimeView(rest)).leaves;
    expect(part && decodedText(part)).toBe(`${'é'.repeat(600)}\r\n`);
    expect(longestLine(output)).toBeLessThanOrEqual(76 + 200);
    expect(summary.partsReencoded).toBe(1);
    expect((await verifyDkim(output, keys)).every((r) => r.result === 'pass')).toBe(true);
  });

  it('changes nothing inside a multipart/signed message', async () => {
    const input = readFixture('pgp-signed.eml');
    const { output, summary } = await render(input);
    const before = await mimeView(input);
    const after = await mimeView(splitAddedFields(output).rest);
    before.leaves.forEach((part, index) => expect(after.leaves[index]?.body.equals(part.body)).toBe(true));
    expect(summary).toMatchObject({ clicks: 0, openPixels: 0, partsRewritten: 0 });
  });

  it('signs a message with an empty body', async () => {
    const input = readFixture('empty-body.eml');
    const { output } = await render(input);
    expect(splitAddedFields(output).rest.equals(input)).toBe(true);
    expect((await verifyDkim(output, keys)).every((r) => r.result === 'pass')).toBe(true);
  });

  it('wraps format=flowed text with soft breaks and keeps the quote depth', async () => {
    const { output } = await render(readFixture('text-only-flowed.eml'), {
      tracking: { opens: true, clicks: false },
    });
    const [part] = (await mimeView(splitAddedFields(output).rest)).leaves;
    if (part === undefined) throw new Error('no part');
    const lines = decodedText(part).split('\r\n');
    expect(lines).toContain('> Could you review the proposal before Friday? It is mostly the same as ');
    expect(lines).toContain('> last year but the budget section has changed quite a bit since then.');
    expect(lines.filter((line) => !line.includes('/c.z?')).every((line) => line.length <= 76)).toBe(true);
    expect(lines).toContain('-- ');
  });

  it('adds no List-Unsubscribe-Post when the tracking base is plain http (RFC 8058 wants HTTPS)', async () => {
    const { output } = await render(readFixture('text-only-flowed.eml'), {
      trackingBaseUrl: 'http://localhost:8080',
    });
    const { added } = splitAddedFields(output);
    expect(added.map((field) => field.slice(0, field.indexOf(':')))).toEqual([
      'DKIM-Signature',
      'DKIM-Signature',
      'List-Unsubscribe',
    ]);
    expect(added[2]).toMatch(/^List-Unsubscribe: <http:\/\/localhost:8080\/u\.z\?[\w-]+\.[\w-]+>\r\n$/);
  });

  it('gives the unsubscribe placeholder the recipient token in HTML and text, and the same URL to List-Unsubscribe', async () => {
    const { output, summary } = await render(readFixture('unsubscribe.eml'));
    const { added, rest } = splitAddedFields(output);
    const header = /^List-Unsubscribe: <([^>]+)>\r\n$/.exec(added[2] ?? '');
    if (header === null) throw new Error('no List-Unsubscribe');
    const url = header[1] as string;
    expect(url.startsWith(`${TRACKING_BASE}/u.z?`)).toBe(true);
    const [plain, html] = (await mimeView(rest)).leaves;
    if (plain === undefined || html === undefined) throw new Error('parts missing');
    expect(unwrap(decodedText(plain)).endsWith(`Unsubscribe: ${url}`)).toBe(true);
    expect(decodedText(html)).toContain(`<a href="${url}">Unsubscribe</a>`);
    expect(decodedText(html)).toContain(`<a href="${url}">Unsubscribe (encoded)</a>`);
    expect(untrack(decodedText(html)).clicks).toEqual(['https://shop.example/prefs']);
    expect(summary).toMatchObject({ unsubscribeLinks: 3, listUnsubscribe: 'added' });
  });

  it('replaces the unsubscribe placeholder even with tracking off, and adds no List-Unsubscribe when the account says no', async () => {
    const { output, summary } = await render(readFixture('unsubscribe.eml'), {
      tracking: { opens: false, clicks: false },
      listUnsubscribe: false,
    });
    expect(output.toString('latin1')).not.toMatch(/^List-Unsubscribe/m);
    expect(output.toString('latin1')).not.toContain('uniqueid');
    expect(summary).toMatchObject({ unsubscribeLinks: 3, clicks: 0, listUnsubscribe: 'off' });
  });

  it('keeps a sender’s own List-Unsubscribe and adds none', async () => {
    const input = Buffer.from(
      'From: a@shop.example\r\nTo: b@recipient.example\r\nList-Unsubscribe: <mailto:leave@shop.example>\r\nSubject: x\r\n\r\nHello\r\n',
    );
    const { output, summary } = await render(input);
    expect(splitAddedFields(output).added.map((field) => field.slice(0, field.indexOf(':')))).toEqual([
      'DKIM-Signature',
      'DKIM-Signature',
    ]);
    expect(summary.listUnsubscribe).toBe('sender');
  });

  it('leaves a forwarded message alone (no tracking inside it) except for the 998 rule', async () => {
    const input = readFixture('forwarded-message.eml');
    const { output } = await render(input);
    const after = await mimeView(splitAddedFields(output).rest);
    const inner = after.leaves.find((part) => !part.root && decodedText(part).includes('inner.example'));
    if (inner === undefined) throw new Error('no inner part');
    expect(inner.encoding).toBe('quoted-printable');
    expect(decodedText(inner)).toContain('<a href="https://inner.example/link">inner link</a>');
    expect(untrack(decodedText(after.leaves[0] as LeafPart)).clicks).toEqual(['https://outer.example/x']);
  });
});

describe('streaming', () => {
  const chunked = (message: Buffer, size: number): Readable => {
    const chunks: Buffer[] = [];
    for (let at = 0; at < message.length; at += size) chunks.push(message.subarray(at, at + size));
    return Readable.from(chunks);
  };

  it.each(corpusFixtures())('renders %s the same however the input is chunked', async (fixture) => {
    const input = readFixture(fixture);
    const whole = (await render(input)).output;
    for (const size of [1, 13, 1000]) {
      if (size === 1 && input.length > 4000) continue;
      const output = await buffer(renderMessage(chunked(input, size), options()));
      expect(output.equals(whole)).toBe(true);
    }
  });

  it('fails the stream, without a byte of the message, when a DKIM key cannot sign', async () => {
    const received: Buffer[] = [];
    const stream = renderMessage(Readable.from([readFixture('base64-html.eml')]), {
      ...options(),
      dkim: {
        domain: 'shop.example',
        selector: 'relay1',
        privateKeys: ['-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n'],
      },
    });
    stream.on('data', (chunk: Buffer) => received.push(chunk));
    await expect(
      new Promise((resolve, reject) => stream.on('end', resolve).on('error', reject)),
    ).rejects.toThrow();
    expect(received).toEqual([]);
  });

  it('fails the stream when the input fails', async () => {
    const input = new Readable({
      read() {
        this.destroy(new Error('spool read failed'));
      },
    });
    await expect(buffer(renderMessage(input, options()))).rejects.toThrow('spool read failed');
    await expect(
      buffer(
        renderMessage(
          new Readable({
            read() {
              this.destroy(new Error('gone'));
            },
          }),
          options({ dkim: undefined }),
        ),
      ),
    ).rejects.toThrow('gone');
  });

  it('refuses options that make no sense before reading anything', () => {
    expect(() => renderMessage(Readable.from([]), options({ trackingBaseUrl: 'ftp://t.example' }))).toThrow(
      /http/,
    );
    expect(() => renderMessage(Readable.from([]), options({ wrapWidth: -1 }))).toThrow(/wrapWidth/);
  });
});
