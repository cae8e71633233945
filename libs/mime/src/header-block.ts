const CTE_FIELD = /^content-transfer-encoding[ \t]*:[^\n]*\n(?:[ \t][^\n]*\n)*/im;

/**
 * The header block with its Content-Transfer-Encoding set to `value`: the existing field (with
 * any folded continuation lines) is replaced in place, or the field is added at the end of the
 * block. Every other byte of the block stays as it was.
 */
export function withTransferEncoding(block: Buffer, value: string): Buffer {
  const text = block.toString('latin1');
  const field = `Content-Transfer-Encoding: ${value}\r\n`;
  if (CTE_FIELD.test(text))
    return Buffer.from(
      text.replace(CTE_FIELD, () => field),
      'latin1',
    );
  // Before the blank line that ends the block (a block without one ends the message).
  if (text.endsWith('\r\n\r\n')) return Buffer.from(text.slice(0, -2) + field + '\r\n', 'latin1');
  if (text.endsWith('\n\n')) return Buffer.from(text.slice(0, -1) + field + '\n', 'latin1');
  return Buffer.from(text + (text.endsWith('\n') || text === '' ? '' : '\r\n') + field, 'latin1');
}

/** One unfolded header field, with CRLF; the value must be free of line breaks. */
export function headerField(name: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new Error(`header ${name} must not contain a line break`);
  return `${name}: ${value}\r\n`;
}
