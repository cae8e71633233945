/** Why a hit looks like a machine (a mail gateway's link scanner, a crawler) rather than the recipient. */
export type ScannerReason = 'head-request' | 'no-user-agent' | 'scanner-user-agent' | 'right-after-delivery';

export interface HitCircumstances {
  /** The HTTP method: GET, or HEAD. */
  readonly method: string;
  readonly userAgent: string;
  readonly at: Date;
  /** When the message reached this recipient's server, if the delivery report knows it yet. */
  readonly deliveredAt?: Date;
}

/** A person does not open and click within a second of the message reaching the mailbox; a scanner does. */
export const RIGHT_AFTER_DELIVERY_MS = 1_000;

/**
 * User agents of mail security gateways, crawlers, link previews and HTTP libraries, lower case. Most
 * gateways (Microsoft Safe Links among them) fetch with a browser's user agent and are only caught by
 * the other signals; this list catches the ones that say what they are.
 */
const SCANNER_AGENTS = [
  'barracuda',
  'proofpoint',
  'mimecast',
  'ironport',
  'trendmicro',
  'symantec',
  'forcepoint',
  'sophos',
  'fortiguard',
  'bitdefender',
  'zscaler',
  'googlebot',
  'bingbot',
  'bingpreview',
  'yandexbot',
  'slackbot',
  'discordbot',
  'facebookexternalhit',
  'skypeuripreview',
  'headlesschrome',
  'phantomjs',
  'python-requests',
  'python-urllib',
  'aiohttp',
  'go-http-client',
  'curl/',
  'wget/',
  'libwww-perl',
  'apache-httpclient',
  'java/',
];

/**
 * Whether a tracking hit looks like a machine, and why. Such hits are flagged in the event
 * (`suspectedScanner`), never dropped: what counts as a scanner is the analytics consumer's call.
 */
export function suspectScanner(hit: HitCircumstances): ScannerReason | undefined {
  // Link scanners check a URL with HEAD before (or instead of) fetching it; browsers never do.
  if (hit.method === 'HEAD') return 'head-request';
  const agent = hit.userAgent.trim().toLowerCase();
  if (agent === '') return 'no-user-agent';
  if (SCANNER_AGENTS.some((known) => agent.includes(known))) return 'scanner-user-agent';
  // Also before the delivery time: the clocks of the delivering and the tracking machine may differ.
  if (hit.deliveredAt && hit.at.getTime() - hit.deliveredAt.getTime() < RIGHT_AFTER_DELIVERY_MS) {
    return 'right-after-delivery';
  }
  return undefined;
}
