import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';

/** Where to deliver a domain's mail: hosts in the order to try them. */
export type Route =
  | { readonly kind: 'hosts'; readonly hosts: readonly { host: string; port: number }[] }
  /** RFC 7505 null MX, or a domain that does not exist: permanent failure. */
  | { readonly kind: 'undeliverable'; readonly reason: string; readonly enhancedCode: string }
  /** DNS answered with a temporary failure (SERVFAIL, timeout): try again later. */
  | { readonly kind: 'temporary-failure'; readonly reason: string };

export interface MxRouterOptions {
  /** Sends every domain to this host instead of its MX (DELIVERY_SMART_HOST). */
  readonly smartHost?: { readonly host: string; readonly port: number };
  readonly cacheTtlMs?: number;
  readonly resolver?: Pick<typeof dns, 'resolveMx' | 'resolve4' | 'resolve6'>;
}

const SMTP_PORT = 25;
const PERMANENT_DNS_CODES = new Set(['ENOTFOUND', 'NXDOMAIN']);
const NO_DATA_CODES = new Set(['ENODATA', 'ENOTFOUND', 'NXDOMAIN']);

/**
 * Routing by RFC 5321 5.1: the MX hosts by preference (equal preferences shuffled to spread
 * load); with no MX, the domain's own A/AAAA as an implicit MX; a null MX (RFC 7505, a single
 * MX with exchange ".") is permanent failure. Answers are cached for a short while.
 */
export class MxRouter {
  private readonly cache = new Map<string, { route: Route; until: number }>();
  private readonly resolver: NonNullable<MxRouterOptions['resolver']>;

  constructor(private readonly options: MxRouterOptions = {}) {
    this.resolver = options.resolver ?? dns;
  }

  async route(domain: string): Promise<Route> {
    const smart = this.options.smartHost;
    if (smart) return { kind: 'hosts', hosts: [smart] };
    const literal = /^\[(.+)\]$/.exec(domain)?.[1]?.replace(/^ipv6:/i, '');
    if (literal && isIP(literal)) return { kind: 'hosts', hosts: [{ host: literal, port: SMTP_PORT }] };
    const cached = this.cache.get(domain);
    if (cached && cached.until > Date.now()) return cached.route;
    const route = await this.lookUp(domain);
    // Temporary failures are not cached: the next attempt asks DNS again.
    if (route.kind !== 'temporary-failure') {
      this.cache.set(domain, { route, until: Date.now() + (this.options.cacheTtlMs ?? 300_000) });
    }
    return route;
  }

  private async lookUp(domain: string): Promise<Route> {
    try {
      const records = await this.resolver.resolveMx(domain);
      if (records.length === 1 && (records[0]?.exchange === '' || records[0]?.exchange === '.')) {
        return {
          kind: 'undeliverable',
          reason: `${domain} accepts no mail (null MX, RFC 7505)`,
          enhancedCode: '5.1.10',
        };
      }
      if (records.length > 0) {
        const sorted = [...records]
          .map((r) => ({ ...r, tiebreak: Math.random() }))
          .sort((a, b) => a.priority - b.priority || a.tiebreak - b.tiebreak);
        return { kind: 'hosts', hosts: sorted.map((r) => ({ host: r.exchange, port: SMTP_PORT })) };
      }
    } catch (error) {
      const code = (error as { code?: string }).code ?? '';
      if (PERMANENT_DNS_CODES.has(code)) {
        return { kind: 'undeliverable', reason: `${domain} does not exist`, enhancedCode: '5.1.2' };
      }
      if (!NO_DATA_CODES.has(code))
        return { kind: 'temporary-failure', reason: `MX lookup for ${domain}: ${code}` };
    }
    return this.implicitMx(domain);
  }

  /** No MX records: the domain itself, if it has an address (RFC 5321 5.1). */
  private async implicitMx(domain: string): Promise<Route> {
    const [v4, v6] = await Promise.allSettled([
      this.resolver.resolve4(domain),
      this.resolver.resolve6(domain),
    ]);
    const found =
      (v4.status === 'fulfilled' && v4.value.length > 0) ||
      (v6.status === 'fulfilled' && v6.value.length > 0);
    if (found) return { kind: 'hosts', hosts: [{ host: domain, port: SMTP_PORT }] };
    const codes = [v4, v6].map((r) =>
      r.status === 'rejected' ? ((r.reason as { code?: string }).code ?? '') : '',
    );
    if (codes.every((c) => c === '' || NO_DATA_CODES.has(c))) {
      return { kind: 'undeliverable', reason: `${domain} has no MX and no address`, enhancedCode: '5.1.2' };
    }
    return { kind: 'temporary-failure', reason: `address lookup for ${domain}: ${codes.join(',')}` };
  }
}
