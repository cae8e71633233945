import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { HeaderStamper } from './header-stamper.js';

const options = {
  received:
    'Received: from x ([127.0.0.1])\r\n\tby relay.test with ESMTP id abc;\r\n\tSun, 29 Nov 2026 01:40:31 +0000\r\n',
  fallbackMessageId: 'abc@relay.test',
  now: new Date('2026-11-29T01:40:31Z'),
};

async function stamp(chunks: string[]): Promise<{ text: string; stamper: HeaderStamper }> {
  const stamper = new HeaderStamper(options);
  const out = await buffer(Readable.from(chunks.map((c) => Buffer.from(c))).pipe(stamper));
  return { text: out.toString(), stamper };
}

describe('HeaderStamper', () => {
  it('prepends Received and leaves a complete message otherwise untouched', async () => {
    const message =
      'From: "Ann Example" <ann@example.com>\r\nMessage-ID: <m1@example.com>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\n\r\nbody\r\n';
    const { text, stamper } = await stamp([message.slice(0, 17), message.slice(17)]);
    expect(text).toBe(options.received + message);
    expect(await stamper.headers).toEqual({
      from: 'ann@example.com',
      fromName: 'Ann Example',
      subject: 'café',
      messageId: 'm1@example.com',
      hasDate: true,
    });
  });

  it('adds Message-ID and Date at the end of the header block when missing', async () => {
    const { text, stamper } = await stamp(['From: ann@example.com\r\nTo: b@example.org\r\n\r\nhello\r\n']);
    expect(text).toBe(
      options.received +
        'From: ann@example.com\r\nTo: b@example.org\r\n' +
        'Message-ID: <abc@relay.test>\r\nDate: Sun, 29 Nov 2026 01:40:31 +0000\r\n' +
        '\r\nhello\r\n',
    );
    expect((await stamper.headers).messageId).toBe('abc@relay.test');
  });

  it('handles a message with no header block, and one with no body', async () => {
    const noHeaders = await stamp(['\r\njust a body\r\n']);
    expect(noHeaders.text).toBe(
      options.received +
        'Message-ID: <abc@relay.test>\r\nDate: Sun, 29 Nov 2026 01:40:31 +0000\r\n\r\njust a body\r\n',
    );
    expect((await noHeaders.stamper.headers).from).toBe('');
    const noBody = await stamp(['From: a@b.example\r\nSubject: x']);
    expect(noBody.text).toBe(
      options.received +
        'From: a@b.example\r\nSubject: x\r\nMessage-ID: <abc@relay.test>\r\nDate: Sun, 29 Nov 2026 01:40:31 +0000\r\n',
    );
  });

  it('reads folded headers and groups', async () => {
    const { stamper } = await stamp(['From: undisclosed:;, "Long\r\n Name" <long@example.com>\r\n\r\n']);
    expect(await stamper.headers).toMatchObject({ from: 'long@example.com', fromName: 'Long Name' });
  });
});
