import { describe, expect, it } from 'vitest';
import { parseVerpAddress, recipientTag, verpReturnPath } from './verp.js';

describe('VERP return path', () => {
  it('round-trips the message id and the recipient tag', () => {
    const path = verpReturnPath('0mx17nuhj52c013528bce0db7', 'bounces.relay.test', 'Ann@Example.org');
    expect(path).toBe(
      `bounces+0mx17nuhj52c013528bce0db7-${recipientTag('ann@example.org')}@bounces.relay.test`,
    );
    expect(path.split('@')[0]?.length).toBeLessThanOrEqual(64);
    expect(parseVerpAddress(path, 'BOUNCES.relay.test')).toEqual({
      messageId: '0mx17nuhj52c013528bce0db7',
      recipientTag: recipientTag('ann@example.org'),
    });
  });

  it('carries only the message id for a transaction with several recipients', () => {
    const path = verpReturnPath('0mx17nuhj52c013528bce0db7', 'b.test');
    expect(parseVerpAddress(path, 'b.test')).toEqual({ messageId: '0mx17nuhj52c013528bce0db7' });
  });

  it.each([
    'postmaster@b.test',
    'bounces+@b.test',
    'bounces+abc-xyz@b.test',
    'bounces+abc@other.test',
    'nobody',
  ])('refuses %s', (address) => {
    expect(parseVerpAddress(address, 'b.test')).toBeNull();
  });
});
