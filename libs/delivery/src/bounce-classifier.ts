import type { BounceClass } from '@relay/domain';

/**
 * What one SMTP reply (or DSN) means for a recipient. One ordered rules table decides the
 * category, in the manner of KumoMTA's bounce classifier; the outcome always follows the reply's
 * class (2xx delivered, 4xx deferred, 5xx bounced), and the bounce class comes from the category.
 */

export type DeliveryOutcome = 'delivered' | 'deferred' | 'bounced';

export type BounceCategory =
  | 'delivered'
  | 'invalid-recipient'
  | 'inactive-mailbox'
  | 'bad-domain'
  | 'routing'
  | 'mailbox-full'
  | 'message-too-large'
  | 'spam-block'
  | 'spam-content'
  | 'content-rejected'
  | 'sender-auth'
  | 'relay-denied'
  | 'auth-required'
  | 'policy'
  | 'rate-limited'
  | 'greylisted'
  | 'mail-system'
  | 'protocol'
  | 'expired'
  | 'connection'
  | 'transient'
  | 'uncategorized';

export interface SmtpReplyInput {
  readonly code: number;
  /** RFC 3463 code when the caller already has it apart; otherwise it is read from the text. */
  readonly enhancedCode?: string;
  /** The reply text; may be the whole reply, multi-line, with `550-5.1.1 ` prefixes on each line. */
  readonly text: string;
}

interface ClassificationFields {
  readonly category: BounceCategory;
  /** RFC 3463 `class.subject.detail`, from the reply, else derived from the category and code. */
  readonly enhancedCode: string;
  /** The reply on one line (`550 5.1.1 The email account ...`), for events and logs. */
  readonly diagnostic: string;
}

/** `bounceClass` is there exactly when the outcome is `bounced`: hard = the address or domain will never work. */
export type ReplyClassification =
  | (ClassificationFields & { readonly outcome: 'bounced'; readonly bounceClass: BounceClass })
  | (ClassificationFields & { readonly outcome: 'delivered' | 'deferred'; readonly bounceClass?: undefined });

interface BounceRule {
  readonly category: BounceCategory;
  /** All given matchers must match. `code` tests the basic reply code as a 3-digit string. */
  readonly code?: RegExp;
  /** Tests the enhanced code without its class digit, e.g. `1.1` for 5.1.1. */
  readonly status?: RegExp;
  readonly text?: RegExp;
}

interface CategorySpec {
  readonly bounceClass: BounceClass;
  /** `subject.detail` of the enhanced code when the reply carries none. */
  readonly defaultStatus: string;
}

/**
 * Hard only where the address or domain will never work; everything that may work later
 * (a full mailbox, a policy or reputation block, a size limit, our own configuration) is soft,
 * because a hard bounce puts the address on the account's bounce suppression list.
 */
const CATEGORIES: Readonly<Record<BounceCategory, CategorySpec>> = {
  delivered: { bounceClass: 'soft', defaultStatus: '0.0' },
  'invalid-recipient': { bounceClass: 'hard', defaultStatus: '1.1' },
  'inactive-mailbox': { bounceClass: 'hard', defaultStatus: '2.1' },
  'bad-domain': { bounceClass: 'hard', defaultStatus: '1.2' },
  // RFC 7505 section 4.2: a null MX says the domain accepts no mail at all.
  routing: { bounceClass: 'hard', defaultStatus: '1.10' },
  'mailbox-full': { bounceClass: 'soft', defaultStatus: '2.2' },
  'message-too-large': { bounceClass: 'soft', defaultStatus: '3.4' },
  'spam-block': { bounceClass: 'soft', defaultStatus: '7.1' },
  'spam-content': { bounceClass: 'soft', defaultStatus: '7.1' },
  'content-rejected': { bounceClass: 'soft', defaultStatus: '6.0' },
  'sender-auth': { bounceClass: 'soft', defaultStatus: '7.26' },
  // The destination host does not take mail for the domain: it stays so until their DNS changes.
  'relay-denied': { bounceClass: 'hard', defaultStatus: '7.1' },
  'auth-required': { bounceClass: 'soft', defaultStatus: '7.0' },
  policy: { bounceClass: 'soft', defaultStatus: '7.1' },
  'rate-limited': { bounceClass: 'soft', defaultStatus: '7.0' },
  greylisted: { bounceClass: 'soft', defaultStatus: '7.1' },
  'mail-system': { bounceClass: 'soft', defaultStatus: '3.0' },
  protocol: { bounceClass: 'soft', defaultStatus: '5.0' },
  expired: { bounceClass: 'soft', defaultStatus: '4.7' },
  connection: { bounceClass: 'soft', defaultStatus: '4.1' },
  transient: { bounceClass: 'soft', defaultStatus: '0.0' },
  uncategorized: { bounceClass: 'soft', defaultStatus: '0.0' },
};

/**
 * The rules, first match wins. Text rules come first because servers often send a generic code
 * (554 5.0.0, 550 5.5.0) with a telling text; then RFC 3463 subjects; then the basic codes of
 * RFC 5321 section 4.2.3. A reply nothing matches is `transient` (4xx) or `uncategorized` (5xx).
 */
const RULES: readonly BounceRule[] = [
  { category: 'routing', text: /null MX|accepts? no mail|does not accept mail/i },
  {
    category: 'spam-block',
    text: /spamhaus|spamcop|barracuda|sorbs|\brbl\b|dnsbl|blocked using|block ?list|black ?list|\blisted (at|on|by)\b|reputation|client host .{0,80}(blocked|rejected)|banned sending ip|\bS3(140|150)\b|your ip|\bIP .{0,40}(blocked|banned)/i,
  },
  { category: 'sender-auth', status: /^7\.(23|24|25|26|27)$/ },
  {
    category: 'sender-auth',
    text: /\bDMARC\b|\bSPF\b|\bDKIM\b|unauthenticated|sender is not authenticated/i,
  },
  {
    category: 'relay-denied',
    text: /relay(ing)? (access )?(denied|not (permitted|allowed))|unable to relay|not permitted to relay|not allowed to relay|relaying (is )?(denied|prohibited)|RelayAccessDenied|non-accepted domain/i,
  },
  { category: 'relay-denied', status: /^7\.(54|64)$/ },
  {
    category: 'spam-content',
    text: /unsolicited|\bspam\b|spammy|phish|bulk mail|junk mail|suspicious (content|url|link)/i,
  },
  {
    category: 'content-rejected',
    text: /virus|malware|infected|content (rejected|refused)|message content|attachment/i,
  },
  { category: 'greylisted', text: /gr[ae]y-?list/i },
  {
    category: 'rate-limited',
    text: /rate limit|rate that prevents|too many (messages|mails|connections|recipients|concurrent)|throttl|exceeded .{0,30}rate|sending rate/i,
  },
  { category: 'rate-limited', status: /^7\.28$/ },
  {
    category: 'mailbox-full',
    text: /mailbox (is )?full|over ?quota|quota (exceeded|full)|exceeded (its|their|the) (storage|quota)|storage allocation|insufficient (user )?(storage|space) for (user|mailbox)|mailbox size limit/i,
  },
  {
    category: 'message-too-large',
    text: /message (size|length|is too (big|large)|too (big|large))|size (limit|exceeds)|exceeds .{0,40}(size|maximum)|too large/i,
  },
  {
    category: 'inactive-mailbox',
    text: /(account|mailbox|user) (has been |is )?(disabled|inactive|suspended|deactivated|locked|expired|frozen)|no longer (active|in use|available)/i,
  },
  {
    category: 'invalid-recipient',
    text: /user unknown|unknown (user|recipient|mailbox|address)|no such (user|mailbox|recipient|address|person)|(user|mailbox|recipient|address|account) (does not|doesn't|did not) exist|(user|recipient|mailbox|address) not found|tried to reach does not exist|NoSuchUser|RecipientNotFound|doesn't have an? .{1,60} account|invalid (recipient|mailbox|address|user)|mailbox unavailable|unrouteable address|not a valid (mailbox|recipient|user)|no mailbox here|recipient rejected|addressee unknown/i,
  },
  {
    category: 'bad-domain',
    text: /host (or domain name )?not found|domain (name )?not found|no such domain|domain (does not|doesn't) exist|unrouteable (mail )?domain|unroutable domain|NonExistentDomain|name service error|NXDOMAIN|no (valid )?MX|domain (is )?(invalid|not valid)/i,
  },
  {
    category: 'auth-required',
    text: /authentication (is )?required|must (first )?authenticate|auth(entication)? credentials invalid|authentication failed|not authenticated/i,
  },
  { category: 'policy', text: /STARTTLS|must issue a STARTTLS|encryption required|TLS required/i },
  {
    category: 'expired',
    text: /expired|retry time(out)? (exceeded|reached)|delivery time|too long in (the )?queue|message too old|gave up|giving up/i,
  },
  // 5.1.10 is RFC 7505's null MX, but Microsoft 365 answers it for an unknown recipient
  // (RESOLVER.ADR.RecipientNotFound); the null MX wording is caught by the first rule.
  { category: 'invalid-recipient', status: /^1\.(0|1|3|6|10)$/ },
  { category: 'bad-domain', status: /^1\.2$/ },
  { category: 'policy', status: /^1\.[78]$/ },
  { category: 'inactive-mailbox', status: /^2\.1$/ },
  { category: 'mailbox-full', status: /^2\.2$/ },
  { category: 'message-too-large', status: /^(2\.3|3\.4)$/ },
  { category: 'mail-system', status: /^[23]\.\d+$/ },
  { category: 'bad-domain', status: /^4\.4$/ },
  { category: 'expired', status: /^4\.7$/ },
  { category: 'connection', status: /^4\.[0-35]$/ },
  { category: 'mail-system', status: /^4\.\d+$/ },
  { category: 'protocol', status: /^5\.\d+$/ },
  { category: 'content-rejected', status: /^6\.\d+$/ },
  { category: 'auth-required', code: /^53[0458]$/ },
  { category: 'auth-required', status: /^7\.(0|8|57)$/, text: /auth/i },
  // A 4.7.x alone ("421 4.7.0 Try again later") says too little to call it policy: transient.
  { category: 'policy', code: /^5/, status: /^7\.\d+$/ },
  { category: 'invalid-recipient', code: /^55[13]$/ },
  { category: 'mailbox-full', code: /^552$/ },
  { category: 'protocol', code: /^50\d$/ },
  { category: 'mail-system', code: /^521$/ },
];

/** Enhanced codes for replies without one, where the basic code says more than X.0.0 (RFC 3463). */
const BASIC_CODE_STATUS: Readonly<Record<number, string>> = {
  421: '4.3.2',
  450: '4.2.1',
  451: '4.3.0',
  452: '4.3.1',
  500: '5.5.2',
  501: '5.5.4',
  502: '5.5.1',
  503: '5.5.1',
  504: '5.5.4',
  521: '5.3.2',
  530: '5.7.0',
  535: '5.7.8',
  551: '5.1.6',
  552: '5.2.2',
  553: '5.1.3',
};

const ENHANCED_AT_START = /^([245])\.(\d{1,3}\.\d{1,3})(?=\s|$|[;:,)])/;
/** An enhanced code inside the text, not part of an IP address or version number. */
const ENHANCED_INSIDE = /(?<![\d.])([245])\.(\d{1,3}\.\d{1,3})(?![\d.]*\d)/;
const REPLY_PREFIX = /^\d{3}(?:[ -]|$)/;

interface ParsedReply {
  readonly statusClass?: string;
  readonly status?: string;
  readonly text: string;
}

/** Strips `550-` / `550 ` and the per-line enhanced code of a (multi-line) reply, keeping the first code. */
function parseReplyText(code: number, raw: string): ParsedReply {
  let statusClass: string | undefined;
  let status: string | undefined;
  const lines = raw
    .split(/\r?\n/)
    .map((line) => {
      let rest = line.trim();
      if (REPLY_PREFIX.test(rest)) rest = rest.slice(4).trimStart();
      const enhanced = ENHANCED_AT_START.exec(rest);
      if (enhanced) {
        statusClass ??= enhanced[1];
        status ??= enhanced[2];
        rest = rest.slice(enhanced[0].length).trimStart();
      }
      return rest;
    })
    .filter((line) => line !== '');
  const text = lines.join(' ').replace(/\s+/g, ' ');
  if (status === undefined) {
    // Some servers put it later ("... mailbox unavailable (5.1.1)"); trust it only in the reply's class.
    const inside = ENHANCED_INSIDE.exec(text);
    if (inside && inside[1] === String(Math.floor(code / 100))) {
      statusClass = inside[1];
      status = inside[2];
    }
  }
  return { statusClass, status, text };
}

function splitEnhanced(enhanced: string | undefined): { statusClass: string; status: string } | undefined {
  const match = /^\s*([245])\.(\d{1,3}\.\d{1,3})\s*$/.exec(enhanced ?? '');
  return match?.[1] && match[2] ? { statusClass: match[1], status: match[2] } : undefined;
}

function matches(rule: BounceRule, code: string, status: string | undefined, text: string): boolean {
  if (rule.code && !rule.code.test(code)) return false;
  if (rule.status && (status === undefined || !rule.status.test(status))) return false;
  if (rule.text && !rule.text.test(text)) return false;
  return true;
}

function outcomeOf(code: number): DeliveryOutcome {
  if (code >= 200 && code < 300) return 'delivered';
  if (code >= 400 && code < 500) return 'deferred';
  return 'bounced';
}

/** The first rule that matches a failure, if any. */
function firstRule(code: number, status: string | undefined, text: string): BounceRule | undefined {
  const codeText = String(code);
  return RULES.find((rule) => matches(rule, codeText, status, text));
}

/**
 * The enhanced code of a reply that has none: a category found in the text knows the detail
 * (Yahoo's `554 delivery error: dd This user doesn't have a yahoo.com account` is 5.1.1), else
 * the basic code's usual one, else `X.0.0`.
 */
function derivedStatus(
  code: number,
  classDigit: string,
  category: BounceCategory,
  rule: BounceRule | undefined,
): string {
  const fromCategory = `${classDigit}.${CATEGORIES[category].defaultStatus}`;
  if (rule?.text) return fromCategory;
  return BASIC_CODE_STATUS[code] ?? (rule ? fromCategory : `${classDigit}.0.0`);
}

/**
 * Classifies one SMTP reply for one recipient. Codes outside 2xx/4xx/5xx (a 3xx where a final
 * reply was due, garbage) count as permanent failures, as RFC 5321 section 4.2.1 says a client
 * should treat an unexpected code.
 */
export function classifySmtpReply(reply: SmtpReplyInput): ReplyClassification {
  const parsed = parseReplyText(reply.code, reply.text);
  const given = splitEnhanced(reply.enhancedCode);
  const status = given?.status ?? parsed.status;
  const outcome = outcomeOf(reply.code);
  const classDigit = outcome === 'delivered' ? '2' : outcome === 'deferred' ? '4' : '5';
  const rule = outcome === 'delivered' ? undefined : firstRule(reply.code, status, parsed.text);
  const category: BounceCategory =
    outcome === 'delivered'
      ? 'delivered'
      : (rule?.category ?? (outcome === 'deferred' ? 'transient' : 'uncategorized'));
  const enhancedCode =
    given !== undefined
      ? `${given.statusClass}.${given.status}`
      : parsed.status !== undefined && parsed.statusClass !== undefined
        ? `${parsed.statusClass}.${parsed.status}`
        : derivedStatus(reply.code, classDigit, category, rule);
  const reported = given ?? (parsed.status === undefined ? undefined : parsed);
  const diagnostic = [
    String(reply.code),
    reported ? `${reported.statusClass}.${reported.status}` : '',
    parsed.text,
  ]
    .filter((part) => part !== '')
    .join(' ');
  return outcome === 'bounced'
    ? { outcome, bounceClass: CATEGORIES[category].bounceClass, category, enhancedCode, diagnostic }
    : { outcome, category, enhancedCode, diagnostic };
}

/** The bounce class a category implies when it ends in a bounce (e.g. `expired`, `routing`). */
export function bounceClassOf(category: BounceCategory): BounceClass {
  return CATEGORIES[category].bounceClass;
}

const CONNECTION_STATUS: readonly { readonly test: RegExp; readonly status: string }[] = [
  // X.4.3 directory server failure: the MX host's own name did not resolve.
  { test: /ENOTFOUND|EAI_AGAIN|ESERVFAIL|EDNS|getaddrinfo/i, status: '4.4.3' },
  // X.4.1 no answer from host.
  { test: /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EHOSTDOWN|ECONNECTION|connect ETIMEDOUT/i, status: '4.4.1' },
  // X.4.2 bad connection: dropped, timed out or failed TLS in the middle of a session.
  {
    test: /ECONNRESET|EPIPE|ETIMEDOUT|timeout|timed out|ESOCKET|ETLS|TLS|SSL|certificate|closed/i,
    status: '4.4.2',
  },
];

interface ErrorLike {
  readonly code?: unknown;
  readonly message?: unknown;
  readonly responseCode?: unknown;
  readonly response?: unknown;
}

/**
 * Classifies a failure to talk SMTP at all (refused, unreachable, timeout, TLS): always a
 * deferral in category `connection`. An error that carries an SMTP reply (nodemailer sets
 * `responseCode` and `response`) is classified as that reply instead.
 */
export function classifyConnectionError(error: unknown): ReplyClassification {
  const e: ErrorLike = typeof error === 'object' && error !== null ? error : {};
  if (typeof e.responseCode === 'number' && e.responseCode >= 200 && e.responseCode < 600) {
    return classifySmtpReply({
      code: e.responseCode,
      text: typeof e.response === 'string' ? e.response : typeof e.message === 'string' ? e.message : '',
    });
  }
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : String(error);
  const probe = `${code} ${message}`;
  const enhancedCode = CONNECTION_STATUS.find((candidate) => candidate.test.test(probe))?.status ?? '4.4.0';
  const diagnostic = code === '' || message.includes(code) ? message : `${code}: ${message}`;
  return { outcome: 'deferred', category: 'connection', enhancedCode, diagnostic };
}

const GAVE_UP_CATEGORIES: ReadonlySet<BounceCategory> = new Set<BounceCategory>([
  'delivered',
  'transient',
  'connection',
  'routing',
  'rate-limited',
  'greylisted',
  'mail-system',
  'uncategorized',
]);

export interface DeliveryStatusInput {
  /** The DSN's Status field, e.g. `5.1.1`. */
  readonly status?: string;
  /** The Diagnostic-Code text after its type, e.g. `550-5.1.1 The email account ...`. */
  readonly diagnosticCode?: string;
  /** The Diagnostic-Code type (`smtp`, `X-Postfix`, ...); only `smtp` carries a reply code. */
  readonly diagnosticType?: string;
}

export interface DeliveryStatusClassification {
  readonly bounceClass: BounceClass;
  readonly category: BounceCategory;
  readonly enhancedCode: string;
}

/**
 * Classifies a recipient an RFC 3464 report says `Action: failed` for: always a bounce. The
 * Status field names the class; when it is only `X.0.0` the diagnostic's own enhanced code is
 * the more precise one. A failed recipient with a 4.x.x status is one the remote MTA stopped
 * retrying (Postfix keeps the last deferral's status), so it is a soft `expired` bounce.
 */
export function classifyDeliveryStatus(input: DeliveryStatusInput): DeliveryStatusClassification {
  const status = splitEnhanced(input.status);
  const diagnostic = input.diagnosticCode ?? '';
  const isSmtp = input.diagnosticType === undefined || /^smtp$/i.test(input.diagnosticType);
  const replyCode = isSmtp ? /^\s*([245]\d\d)(?:[ -]|$)/.exec(diagnostic)?.[1] : undefined;
  const statusClass = status?.statusClass ?? replyCode?.[0] ?? '5';
  const code =
    replyCode !== undefined && replyCode[0] === statusClass ? Number(replyCode) : Number(`${statusClass}50`);
  // X.0.0 says nothing: let the diagnostic's own code, or the category, give the detail.
  const precise = status && status.status !== '0.0' ? `${status.statusClass}.${status.status}` : undefined;
  const reply = classifySmtpReply({
    code,
    text: diagnostic,
    ...(precise === undefined ? {} : { enhancedCode: precise }),
  });
  if (reply.outcome === 'bounced') {
    return {
      bounceClass: bounceClassOf(reply.category),
      category: reply.category,
      enhancedCode: reply.enhancedCode,
    };
  }
  // A 4.x.x (or 2.x.x) status on a failed recipient: the remote MTA gave up retrying. A telling
  // category (mailbox-full) stays; a generic one becomes `expired`. Never hard: it was temporary.
  const category: BounceCategory = GAVE_UP_CATEGORIES.has(reply.category) ? 'expired' : reply.category;
  return { bounceClass: 'soft', category, enhancedCode: reply.enhancedCode };
}
