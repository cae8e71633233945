import { describe, expect, it } from 'vitest';
import {
  decodeEntities,
  trackHtml,
  trackPlainText,
  type TrackingCounts,
  type TrackingRewrite,
} from './link-tracking.js';

const BASE = 'https://t.example';

function rewrite(overrides: Partial<TrackingRewrite> = {}): TrackingRewrite {
  return {
    baseUrl: BASE,
    opens: false,
    clicks: true,
    trackUrlTextLinks: false,
    unsubscribeUrl: `${BASE}/u.z?UNSUB`,
    openPixelUrl: `${BASE}/o.z?OPEN`,
    clickUrl: (url) => `${BASE}/c.z?[${url}]`,
    ...overrides,
  };
}

const counts = (): TrackingCounts => ({ clicks: 0, urlTextLinksLeft: 0, unsubscribeLinks: 0, openPixels: 0 });
const identity = (text: string): string => text;
const html = (input: string, overrides: Partial<TrackingRewrite> = {}, tally = counts()): string =>
  trackHtml(input, rewrite(overrides), tally, identity);
const text = (input: string, overrides: Partial<TrackingRewrite> = {}, tally = counts()): string =>
  trackPlainText(input, rewrite(overrides), tally, identity);

describe('HTML links', () => {
  it('rewrites the http(s) href of <a> and <area>, whatever the quoting and case', () => {
    expect(html('<a href="https://a.example/x">A</a>')).toBe(
      `<a href="${BASE}/c.z?[https://a.example/x]">A</a>`,
    );
    expect(html("<a class='b' HREF='http://b.example/'>B</a>")).toBe(
      `<a class='b' HREF='${BASE}/c.z?[http://b.example/]'>B</a>`,
    );
    expect(html('<a href=https://c.example/y>C</a>')).toBe(
      `<a href="${BASE}/c.z?[https://c.example/y]">C</a>`,
    );
    expect(html('<area shape="rect" href=" https://d.example/ ">')).toBe(
      `<area shape="rect" href="${BASE}/c.z?[https://d.example/]">`,
    );
    expect(html('<A\r\n  href="https://e.example/">E</A>')).toBe(
      `<A\r\n  href="${BASE}/c.z?[https://e.example/]">E</A>`,
    );
  });

  it('tracks the URL the reader would open: entities decoded, then escaped again in the attribute', () => {
    const tally = counts();
    expect(
      html(
        '<a href="https://a.example/?x=1&amp;y=2">A</a>',
        { clickUrl: (url) => `${BASE}/c.z?${url}` },
        tally,
      ),
    ).toBe(`<a href="${BASE}/c.z?https://a.example/?x=1&amp;y=2">A</a>`);
    expect(tally.clicks).toBe(1);
    expect(decodeEntities('&lt;&#x41;&#66;&amp;&unknown;')).toBe('<AB&&unknown;');
  });

  it('leaves mailto:, tel:, anchors, relative links, our own URLs and look-alike attributes alone', () => {
    const untouched = [
      '<a href="mailto:help@shop.example">mail</a>',
      '<a href="tel:+15555550100">call</a>',
      '<a href="#top">top</a>',
      '<a href="/relative/path">rel</a>',
      '<a href="javascript:void(0)">js</a>',
      `<a href="${BASE}/c.z?already">ours</a>`,
      '<a data-href="https://a.example/" title="href=https://b.example/">none</a>',
      '<abbr title="https://a.example/">not a link</abbr>',
      '<img src="https://a.example/logo.png">',
    ].join('\n');
    expect(html(untouched)).toBe(untouched);
  });

  it('leaves a link whose visible text is a URL, unless the account tracks those too', () => {
    const input =
      '<a href="https://a.example/page"><b> https://a.example/page </b></a> <a href="https://b.example/">www.b.example</a>';
    const tally = counts();
    expect(html(input, {}, tally)).toBe(input);
    expect(tally).toMatchObject({ clicks: 0, urlTextLinksLeft: 2 });
    expect(html(input, { trackUrlTextLinks: true })).toBe(
      `<a href="${BASE}/c.z?[https://a.example/page]"><b> https://a.example/page </b></a> <a href="${BASE}/c.z?[https://b.example/]">www.b.example</a>`,
    );
  });

  it('replaces every unsubscribe placeholder with the recipient URL and does not track it', () => {
    const tally = counts();
    const input =
      '<a href="https://shop.example/u.z?***uniqueid***">Unsubscribe</a> <a href="http://x.example/p/u.z?%2A%2A%2Auniqueid%2A%2A%2A">U</a> copy: https://shop.example/u.z?***uniqueid***';
    expect(html(input, {}, tally)).toBe(
      `<a href="${BASE}/u.z?UNSUB">Unsubscribe</a> <a href="${BASE}/u.z?UNSUB">U</a> copy: ${BASE}/u.z?UNSUB`,
    );
    expect(tally).toMatchObject({ unsubscribeLinks: 3, clicks: 0 });
  });

  it('puts the open pixel before the last </body>, or at the end of a fragment', () => {
    const pixel = `<img src="${BASE}/o.z?OPEN" width="1" height="1" alt="" style="display:none;border:0">`;
    expect(html('<html><body>hi</body></html>', { opens: true, clicks: false })).toBe(
      `<html><body>hi${pixel}</body></html>`,
    );
    expect(html('<p>x</p><!-- </body> --></BODY >\r\n', { opens: true })).toBe(
      `<p>x</p><!-- </body> -->${pixel}</BODY >\r\n`,
    );
    expect(html('<p>fragment</p>\r\n\r\n', { opens: true })).toBe(`<p>fragment</p>${pixel}\r\n\r\n`);
  });
});

describe('plain text links', () => {
  it('rewrites bare http(s) URLs without the punctuation of the sentence around them', () => {
    expect(text('See https://a.example/x. Or (https://b.example/y), or <https://c.example/z>!')).toBe(
      `See ${BASE}/c.z?[https://a.example/x]. Or (${BASE}/c.z?[https://b.example/y]), or <${BASE}/c.z?[https://c.example/z]>!`,
    );
    expect(text('Wiki: https://en.wikipedia.org/wiki/Mail_(disambiguation) ok')).toBe(
      `Wiki: ${BASE}/c.z?[https://en.wikipedia.org/wiki/Mail_(disambiguation)] ok`,
    );
    expect(text('Quoted "https://a.example/q?x=1&y=2"; done')).toBe(
      `Quoted "${BASE}/c.z?[https://a.example/q?x=1&y=2]"; done`,
    );
  });

  it('stops a URL at the first non-ASCII character', () => {
    expect(text('詳細はhttps://a.example/faqをご覧ください')).toBe(
      `詳細は${BASE}/c.z?[https://a.example/faq]をご覧ください`,
    );
  });

  it('leaves e-mail addresses, bare domains and our own URLs, and everything when clicks are off', () => {
    const input = `Write to help@shop.example or visit www.shop.example. ${BASE}/c.z?abc`;
    expect(text(input)).toBe(input);
    expect(text('https://a.example/', { clicks: false })).toBe('https://a.example/');
  });

  it('replaces the unsubscribe placeholder', () => {
    expect(text('Unsubscribe: https://shop.example/u.z?***uniqueid***\r\n', { clicks: false })).toBe(
      `Unsubscribe: ${BASE}/u.z?UNSUB\r\n`,
    );
  });
});
