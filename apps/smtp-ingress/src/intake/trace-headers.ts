const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number): string => String(n).padStart(2, '0');

/** RFC 5322 3.3 date-time in UTC, e.g. `Sun, 29 Nov 2026 01:40:31 +0000`. */
export function rfc5322Date(date: Date): string {
  return (
    `${DAYS[date.getUTCDay()]}, ${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`
  );
}

export interface ReceivedInfo {
  readonly helo: string;
  readonly clientHostname: string;
  readonly clientIp: string;
  readonly hostname: string;
  /** RFC 3848 protocol: ESMTP, ESMTPS, ESMTPA, ESMTPSA. */
  readonly protocol: string;
  readonly relayMessageId: string;
  readonly date: Date;
}

/** The RFC 5321 4.4 trace line this relay prepends, folded, ending in CRLF. */
export function receivedHeader(info: ReceivedInfo): string {
  const helo = sanitise(info.helo) || 'unknown';
  const host = sanitise(info.clientHostname);
  const from = host && host !== `[${info.clientIp}]` ? `${host} [${info.clientIp}]` : `[${info.clientIp}]`;
  return (
    `Received: from ${helo} (${from})\r\n` +
    `\tby ${sanitise(info.hostname)} with ${info.protocol} id ${info.relayMessageId};\r\n` +
    `\t${rfc5322Date(info.date)}\r\n`
  );
}

/** Client-supplied names go into a header: keep them to printable ASCII without structure. */
function sanitise(value: string): string {
  return value.replace(/[^\x21-\x7e]/g, '').replace(/[()]/g, '');
}
