import { describe, expect, it } from 'vitest';
import { confirmationPage, escapeHtml, unsubscribedPage } from './pages.js';

const HOSTILE = `"><script>alert('x')</script>&@example.org`;

describe('unsubscribe pages', () => {
  it('escapes text for content and quoted attributes', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('asks with a button that posts the token back, escaping the address', () => {
    const html = confirmationPage(HOSTILE, 'abc.def');
    expect(html).toContain('<form method="post" action="?abc.def">');
    expect(html).toContain('<button type="submit">Unsubscribe</button>');
    expect(html).toContain('&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;@example.org');
    expect(html).not.toContain('<script>');
  });

  it('confirms, escaping the address', () => {
    const html = unsubscribedPage(HOSTILE);
    expect(html).toContain('You are unsubscribed');
    expect(html).not.toContain('<script>');
  });
});
