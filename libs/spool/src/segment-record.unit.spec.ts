import { describe, expect, it } from 'vitest';
import {
  parseRecordHeader,
  parseSegmentKey,
  recordHeader,
  REMOVED_MARK,
  segmentKeyFor,
} from './segment-record.js';

describe('segment records', () => {
  it('reads back the header it writes, and a removed mark over its magic', () => {
    const header = recordHeader('msg_01-AZ', 5_402);
    expect(parseRecordHeader(Buffer.concat([header, Buffer.from('body')]))).toEqual({
      live: true,
      messageId: 'msg_01-AZ',
      bodyLength: 5_402,
      headerLength: header.length,
    });
    REMOVED_MARK.copy(header, 0);
    expect(parseRecordHeader(header)).toMatchObject({ live: false, messageId: 'msg_01-AZ' });
  });

  it('finds no header in zeros, a torn header, another magic or an empty id', () => {
    const header = recordHeader('abc', 10);
    expect(parseRecordHeader(Buffer.alloc(64))).toBeUndefined();
    expect(parseRecordHeader(header.subarray(0, header.length - 1))).toBeUndefined();
    expect(parseRecordHeader(Buffer.concat([Buffer.from('XXXX'), header.subarray(4)]))).toBeUndefined();
    const emptyId = Buffer.from(header);
    emptyId.writeUInt8(0, 8);
    expect(parseRecordHeader(emptyId)).toBeUndefined();
  });

  it('refuses to head a record with an empty or overlong id', () => {
    expect(() => recordHeader('', 1)).toThrow(/cannot head/);
    expect(() => recordHeader('x'.repeat(201), 1)).toThrow(/cannot head/);
  });

  it('round-trips a segment key and parses nothing else', () => {
    const parts = {
      day: '2025-03-10',
      segment: 'm7x2k1q0-0a1b2c3d4e5f',
      offset: 1_048_576,
      messageId: 'msg_1',
    };
    const key = segmentKeyFor(parts);
    expect(key).toBe('2025-03-10/m7x2k1q0-0a1b2c3d4e5f/1048576/msg_1');
    expect(parseSegmentKey(key)).toEqual(parts);
    for (const other of [
      '2025-03-10/msg_1',
      '2025-03-10/../1/msg_1',
      '2025-03-10/m7x2k1q0-0a1b/-1/msg_1',
      '2025-03-10/M7-0a/1/msg_1',
      '../2025-03-10/m7-0a/1/msg_1',
      '2025-03-10/m7-0a/1/msg.1',
    ]) {
      expect(parseSegmentKey(other)).toBeUndefined();
    }
    expect(() => segmentKeyFor({ ...parts, segment: '../x' })).toThrow(/invalid segment name/);
  });
});
