import { describe, expect, it } from 'vitest';
import { newRelayMessageId, relayMessageIdTime } from './relay-message-id.js';

describe('newRelayMessageId', () => {
  it('is the base-36 time then 16 hex digits, and its time reads back', () => {
    const at = Date.UTC(2026, 10, 29, 5, 30, 0, 123);
    const id = newRelayMessageId(at);
    expect(id).toMatch(/^[0-9a-z]{9}[0-9a-f]{16}$/);
    expect(relayMessageIdTime(id, at)?.getTime()).toBe(at);
  });

  it('never repeats its random part, across several refills of the random pool', () => {
    const at = Date.now();
    // 4 KB pool / 8 bytes = 512 ids per refill; 5 000 ids cross about ten refills.
    const ids = Array.from({ length: 5_000 }, () => newRelayMessageId(at));
    expect(new Set(ids).size).toBe(ids.length);
    const suffixes = new Set(ids.map((id) => id.slice(9)));
    expect(suffixes.size).toBe(ids.length);
  });

  it('does not read a time into ids that are not the relay’s', () => {
    expect(relayMessageIdTime('not-a-relay-id')).toBeUndefined();
    expect(relayMessageIdTime(`000000000${'0'.repeat(16)}`)).toBeUndefined();
  });
});
