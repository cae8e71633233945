/**
 * The layout of a body inside a local spool segment file, and the key that points at it.
 *
 * A record is `magic (4) | body length (uint32 BE) | id length (uint8) | message id | body`. The
 * magic says whether the body is live or was removed (remove() overwrites it in place; a segment
 * is only ever freed whole). The header lets a reader check that a key points at the record it
 * names, and lets the sweep count the bodies of a segment without an index.
 */

import { DAY_PATTERN, MAX_MESSAGE_ID_LENGTH, MESSAGE_ID_PATTERN } from './spool-key.js';

const LIVE = Buffer.from('RLB1', 'latin1');
const REMOVED = Buffer.from('RLB0', 'latin1');
const PREFIX_OCTETS = 9;
/** Enough to read any record's header in one go. */
export const MAX_RECORD_HEADER_OCTETS = PREFIX_OCTETS + MAX_MESSAGE_ID_LENGTH;

/** The octets that mark a record removed, written over its magic. */
export const REMOVED_MARK: Buffer = REMOVED;

export interface RecordHeader {
  readonly live: boolean;
  readonly messageId: string;
  readonly bodyLength: number;
  /** Octets from the record's start to its body's. */
  readonly headerLength: number;
}

/** The octets a record of `bodyLength` octets under `messageId` takes, header included. */
export function recordOctets(messageId: string, bodyLength: number): number {
  return PREFIX_OCTETS + Buffer.byteLength(messageId, 'latin1') + bodyLength;
}

/** The header of a live record for `bodyLength` octets under `messageId` ([A-Za-z0-9_-], <= 200). */
export function recordHeader(messageId: string, bodyLength: number): Buffer {
  const id = Buffer.from(messageId, 'latin1');
  if (id.length === 0 || id.length > MAX_MESSAGE_ID_LENGTH) {
    throw new Error(`message id of ${id.length} octets cannot head a spool record`);
  }
  const header = Buffer.allocUnsafe(PREFIX_OCTETS + id.length);
  LIVE.copy(header, 0);
  header.writeUInt32BE(bodyLength, 4);
  header.writeUInt8(id.length, 8);
  id.copy(header, PREFIX_OCTETS);
  return header;
}

/**
 * The header at the start of `octets`, or undefined when they do not hold a whole one (zeros of a
 * write that never happened, a torn tail after a crash, or a key pointing elsewhere).
 */
export function parseRecordHeader(octets: Buffer): RecordHeader | undefined {
  if (octets.length < PREFIX_OCTETS) return undefined;
  const magic = octets.subarray(0, 4);
  const live = magic.equals(LIVE);
  if (!live && !magic.equals(REMOVED)) return undefined;
  const idLength = octets.readUInt8(8);
  const headerLength = PREFIX_OCTETS + idLength;
  if (idLength === 0 || octets.length < headerLength) return undefined;
  return {
    live,
    messageId: octets.toString('latin1', PREFIX_OCTETS, headerLength),
    bodyLength: octets.readUInt32BE(4),
    headerLength,
  };
}

export interface SegmentKeyParts {
  readonly day: string;
  /** The segment file's name without its `.seg` suffix. */
  readonly segment: string;
  /** Where the record starts in the segment. */
  readonly offset: number;
  readonly messageId: string;
}

const SEGMENT_NAME_PATTERN = '[a-z0-9]{1,16}-[a-f0-9]{1,16}';
const SEGMENT_NAME = new RegExp(`^${SEGMENT_NAME_PATTERN}$`);
const SEGMENT_KEY = new RegExp(
  `^(${DAY_PATTERN})/(${SEGMENT_NAME_PATTERN})/(\\d{1,15})/(${MESSAGE_ID_PATTERN})$`,
);

/** `<yyyy-mm-dd>/<segment>/<offset>/<messageId>`: where a body lives, and whose it is. */
export function segmentKeyFor(parts: SegmentKeyParts): string {
  if (!SEGMENT_NAME.test(parts.segment))
    throw new Error(`invalid segment name ${JSON.stringify(parts.segment)}`);
  return `${parts.day}/${parts.segment}/${parts.offset}/${parts.messageId}`;
}

/** The parts of a segment key; undefined for anything else (a file key, a path, `..`). */
export function parseSegmentKey(key: string): SegmentKeyParts | undefined {
  const match = SEGMENT_KEY.exec(key);
  if (!match) return undefined;
  return {
    day: match[1] as string,
    segment: match[2] as string,
    offset: Number(match[3]),
    messageId: match[4] as string,
  };
}
