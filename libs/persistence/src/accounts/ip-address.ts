import { isIPv4, isIPv6 } from 'node:net';

/**
 * Client addresses and allow-list CIDRs. A dual-stack listener reports IPv4 clients as IPv4-mapped
 * IPv6 (`::ffff:127.0.0.1`), and Postgres never matches such an address against an IPv4 CIDR, so
 * both sides are brought to plain IPv4 first.
 */

function ipv4ToBytes(text: string): number[] {
  return text.split('.').map(Number);
}

/** The 16 bytes of a valid IPv6 address (node:net has validated it). */
function ipv6ToBytes(text: string): number[] {
  let hex = text;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (isIPv4(tail)) {
    const [a = 0, b = 0, c = 0, d = 0] = ipv4ToBytes(tail);
    hex = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = hex.split('::') as [string, string | undefined];
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const all = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return all.flatMap((group) => {
    const value = parseInt(group, 16);
    return [value >> 8, value & 0xff];
  });
}

function formatIpv6(bytes: readonly number[]): string {
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0));
  // RFC 5952: compress the longest run of two or more zero groups, the first if tied.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:0:0/96`), else null. */
function mappedIpv4(bytes: readonly number[]): string | null {
  const isMapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return isMapped ? bytes.slice(12).join('.') : null;
}

function stripDecoration(ip: string): string {
  const unbracketed = ip.trim().replace(/^\[(.*)\]$/, '$1');
  const zone = unbracketed.indexOf('%');
  return zone >= 0 ? unbracketed.slice(0, zone) : unbracketed;
}

/**
 * The address a client connected from, ready to match against allow-lists: IPv4-mapped IPv6
 * becomes IPv4, brackets and a zone id are dropped. Null when `ip` is not an IP address.
 */
export function normaliseClientIp(ip: string): string | null {
  const bare = stripDecoration(ip);
  if (isIPv4(bare)) return bare;
  if (!isIPv6(bare)) return null;
  return mappedIpv4(ipv6ToBytes(bare)) ?? bare.toLowerCase();
}

export type CidrParse =
  { readonly ok: true; readonly cidr: string } | { readonly ok: false; readonly reason: string };

function networkOf(bytes: readonly number[], prefix: number): number[] {
  return bytes.map((byte, i) => {
    const bits = Math.min(8, Math.max(0, prefix - 8 * i));
    return byte & ((0xff << (8 - bits)) & 0xff);
  });
}

/**
 * Validates one allow-list entry: a CIDR, or a bare address meaning just that host (/32 or /128).
 * Host bits set after the prefix are refused, as Postgres's cidr type does, with the network
 * meant as a hint. IPv4-mapped IPv6 CIDRs (prefix >= 96) become the IPv4 CIDR they cover.
 */
export function parseCidr(text: string): CidrParse {
  const match = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(text.trim());
  const address = match?.[1] ?? '';
  const v4 = isIPv4(address);
  if (!match || (!v4 && !isIPv6(address))) {
    return { ok: false, reason: `"${text}" is not an IP address or CIDR` };
  }
  let bytes = v4 ? ipv4ToBytes(address) : ipv6ToBytes(address);
  let prefix = match[2] === undefined ? bytes.length * 8 : Number(match[2]);
  if (prefix > bytes.length * 8) {
    return { ok: false, reason: `"${text}" has a prefix longer than ${bytes.length * 8} bits` };
  }
  if (!v4 && prefix >= 96 && mappedIpv4(bytes) !== null) {
    bytes = bytes.slice(12);
    prefix -= 96;
  }
  const format = (b: readonly number[]): string => (b.length === 4 ? b.join('.') : formatIpv6(b));
  const network = networkOf(bytes, prefix);
  if (network.some((byte, i) => byte !== bytes[i])) {
    return {
      ok: false,
      reason: `"${text}" has host bits set after the /${prefix} prefix (did you mean ${format(network)}/${prefix}?)`,
    };
  }
  return { ok: true, cidr: `${format(bytes)}/${prefix}` };
}
