import { randomBytes } from 'node:crypto';

/**
 * Messages for `npm run bench:render`, shaped like transactional mail from a web application:
 * multipart/alternative with quoted-printable text and HTML (links, the unsubscribe placeholder),
 * and for the large sizes base64 attachments in multipart/mixed.
 */

const CRLF = '\r\n';

function qpEncode(text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  const lines: string[] = [];
  let line = '';
  const flush = (soft: boolean): void => {
    lines.push(soft ? `${line}=` : line);
    line = '';
  };
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i] as number;
    if (byte === 0x0d && bytes[i + 1] === 0x0a) {
      flush(false);
      i++;
      continue;
    }
    const plain = (byte >= 0x21 && byte <= 0x7e && byte !== 0x3d) || byte === 0x20;
    const piece = plain ? String.fromCharCode(byte) : `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    if (line.length + piece.length > 75) flush(true);
    line += piece;
  }
  if (line.length > 0) lines.push(line);
  return lines.join(CRLF);
}

function base64Lines(bytes: Buffer): string {
  const encoded = bytes.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < encoded.length; i += 76) lines.push(encoded.slice(i, i + 76));
  return lines.join(CRLF);
}

const PARAGRAPH =
  'Thanks for your order. We have received your payment and are getting your items ready. ' +
  'You will get another e-mail with the tracking number as soon as the parcel leaves our warehouse. ';

function htmlBody(paragraphs: number): string {
  const links = [
    'https://shop.example/orders/10023?utm_source=transactional&amp;utm_medium=email',
    'https://shop.example/account/orders',
    'https://help.shop.example/shipping',
    'https://help.shop.example/returns',
    'https://shop.example/app/ios',
    'https://shop.example/app/android',
    'https://www.facebook.com/shop.example',
    'https://twitter.com/shopexample',
  ];
  const rows = [];
  for (let i = 0; i < paragraphs; i++) {
    const link = links[i % links.length] as string;
    rows.push(
      `<tr><td style="padding:8px 24px;font-family:Arial,sans-serif;font-size:14px;line-height:20px;color:#333333">${PARAGRAPH}` +
        `<a href="${link}" style="color:#0a66c2">Details</a></td></tr>`,
    );
  }
  return [
    '<!DOCTYPE html>',
    '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"><title>Your order</title></head>',
    '<body style="margin:0;padding:0;background:#f4f4f4">',
    '<table role="presentation" width="600" align="center" cellpadding="0" cellspacing="0" border="0" style="background:#ffffff">',
    ...rows,
    '<tr><td style="padding:16px 24px;font-size:12px;color:#777777">You get this e-mail because you have an account at shop.example. ' +
      '<a href="https://shop.example/u.z?***uniqueid***">Unsubscribe</a></td></tr>',
    '</table>',
    '</body></html>',
    '',
  ].join(CRLF);
}

function textBody(paragraphs: number): string {
  const lines = ['Hello Jane,', ''];
  for (let i = 0; i < paragraphs; i++)
    lines.push(`${PARAGRAPH}Details: https://shop.example/orders/10023`, '');
  lines.push('Unsubscribe: https://shop.example/u.z?***uniqueid***', '');
  return lines.join(CRLF);
}

function headers(contentType: string): string {
  return [
    'From: "Example Shop" <orders@shop.example>',
    'To: Jane Doe <jane@recipient.example>',
    'Subject: Your order #10023 is confirmed',
    'Date: Tue, 3 Mar 2026 10:14:01 +0100',
    'Message-ID: <order-10023.1741000441@shop.example>',
    'MIME-Version: 1.0',
    'X-Mailer: shop-backend 4.2',
    contentType,
    '',
    '',
  ].join(CRLF);
}

function alternative(paragraphs: number, boundary: string): string {
  return [
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    qpEncode(textBody(Math.max(1, Math.round(paragraphs / 2)))),
    `--${boundary}`,
    'Content-Type: text/html; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    qpEncode(htmlBody(paragraphs)),
    `--${boundary}--`,
    '',
  ].join(CRLF);
}

/** A multipart/alternative message of about `bytes` (tuned by the number of paragraphs). */
export function smallMessage(bytes: number): Buffer {
  for (let paragraphs = 1; ; paragraphs++) {
    const message =
      headers('Content-Type: multipart/alternative; boundary="alt-7f3a"') +
      alternative(paragraphs, 'alt-7f3a');
    if (message.length >= bytes) return Buffer.from(message);
  }
}

/** The 5 KB body plus base64 attachments (random bytes, like compressed files) up to about `bytes`. */
export function messageWithAttachments(bytes: number, attachments: number): Buffer {
  const boundary = 'mixed-91c2';
  const body = alternative(10, 'alt-7f3a');
  const head =
    headers(`Content-Type: multipart/mixed; boundary="${boundary}"`) +
    `--${boundary}${CRLF}Content-Type: multipart/alternative; boundary="alt-7f3a"${CRLF}${CRLF}${body}`;
  const attachmentBytes = Math.floor(((bytes - head.length) * 0.75) / attachments / 57) * 57;
  const parts = [head];
  for (let i = 0; i < attachments; i++) {
    parts.push(
      [
        `--${boundary}`,
        `Content-Type: application/pdf; name="document-${i + 1}.pdf"`,
        `Content-Disposition: attachment; filename="document-${i + 1}.pdf"`,
        'Content-Transfer-Encoding: base64',
        '',
        base64Lines(randomBytes(attachmentBytes)),
        '',
      ].join(CRLF),
    );
  }
  parts.push(`--${boundary}--${CRLF}`);
  return Buffer.from(parts.join(''));
}
