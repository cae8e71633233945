import type { DataSource } from 'typeorm';
import { decryptPrivateKey } from '@relay/mime';
import { resolveSecret } from './account-dkim-keys.js';
import type { StoredDkimKey } from './account.entity.js';
import type { DkimKeySecret } from './accounts.repository.js';

/** How an account wants its mail rewritten on the way out (what the delivery stage renders with). */
export interface AccountRenderSettings {
  /** 0: no wrapping. */
  readonly wrapWidth: number;
  readonly tracking: { readonly opens: boolean; readonly clicks: boolean; readonly urlTextLinks: boolean };
  readonly listUnsubscribe: boolean;
  /** Host of the tracking URLs; null: TRACKING_BASE_URL. */
  readonly trackingDomain: string | null;
  /** Absent: no DKIM signature. */
  readonly dkim?: {
    readonly domain: string;
    /** The account's selector (the Ed25519 key's is derived from it: dkimSelectorFor). */
    readonly selector: string;
    /** Decrypted PEMs: RSA first, then Ed25519 when the account has one. */
    readonly privateKeys: readonly string[];
  };
}

export interface AccountRenderSettingsOptions {
  /** The secret the admin API encrypted the keys with (config dkimKeySecret). */
  readonly dkimKeySecret: DkimKeySecret;
  /** How long a change made elsewhere may go unseen. */
  readonly ttlMs?: number;
  readonly maxEntries?: number;
  /** Milliseconds; for tests. */
  readonly now?: () => number;
}

/** The account's DKIM keys do not decrypt with the configured secret (changed, or a value altered). */
export class DkimKeyUnreadableError extends Error {
  constructor(
    readonly accountId: string,
    cause: unknown,
  ) {
    super(
      `DKIM key of account ${accountId} cannot be decrypted (was DKIM_KEY_SECRET changed? rotate the account's keys)`,
      { cause },
    );
  }
}

interface Row {
  wrap_width: number;
  tracking_opens: boolean;
  tracking_clicks: boolean;
  track_url_text_links: boolean;
  list_unsubscribe: boolean;
  tracking_domain: string | null;
  dkim_domain: string | null;
  dkim_selector: string | null;
  dkim_keys: StoredDkimKey[];
}

interface Entry {
  readonly settings: Promise<AccountRenderSettings | null>;
  readonly expiresAt: number;
  /** Decrypted PEMs by their encrypted form: a refresh that finds the same keys decrypts nothing. */
  readonly pems: Map<string, string>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DEFAULT_TTL_MS = 30_000;
const DEFAULT_MAX_ENTRIES = 10_000;

/**
 * The read side of the accounts' render settings for the delivery stage, kept in process for a
 * short while: every message asks, and DKIM keys decrypt through scrypt, slow on purpose (tens of
 * milliseconds). Settings changed through the admin API apply within `ttlMs`. Lookups of one
 * account in flight together share one query. A failure is not kept: the next lookup tries again.
 */
export class AccountRenderSettingsRepository {
  private readonly entries = new Map<string, Entry>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private secret: Promise<string> | undefined;

  constructor(
    private readonly dataSource: DataSource,
    private readonly options: AccountRenderSettingsOptions,
  ) {
    this.ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.now = options.now ?? Date.now;
  }

  /** The account's settings, or null when no account has `accountId`. */
  get(accountId: string): Promise<AccountRenderSettings | null> {
    const now = this.now();
    const cached = this.entries.get(accountId);
    // Deleted and set again on every use, so the Map's order is least recently used first.
    this.entries.delete(accountId);
    if (cached && cached.expiresAt > now) {
      this.entries.set(accountId, cached);
      return cached.settings;
    }
    const pems = new Map<string, string>();
    const settings = this.load(accountId, pems, cached?.pems);
    const entry: Entry = { settings, expiresAt: now + this.ttlMs, pems };
    this.entries.set(accountId, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
    settings.catch(() => {
      if (this.entries.get(accountId) === entry) this.entries.delete(accountId);
    });
    return settings;
  }

  /** Drops what is kept of one account (or of all): the next lookup reads the row. */
  forget(accountId?: string): void {
    if (accountId === undefined) this.entries.clear();
    else this.entries.delete(accountId);
  }

  private async load(
    accountId: string,
    pems: Map<string, string>,
    previous: ReadonlyMap<string, string> | undefined,
  ): Promise<AccountRenderSettings | null> {
    if (!UUID.test(accountId)) return null;
    const [row] = await this.dataSource.query<Row[]>(
      `SELECT wrap_width, tracking_opens, tracking_clicks, track_url_text_links, list_unsubscribe,
              tracking_domain, dkim_domain, dkim_selector, dkim_keys
         FROM accounts WHERE id = $1`,
      [accountId],
    );
    if (!row) return null;
    const settings: AccountRenderSettings = {
      wrapWidth: row.wrap_width,
      tracking: {
        opens: row.tracking_opens,
        clicks: row.tracking_clicks,
        urlTextLinks: row.track_url_text_links,
      },
      listUnsubscribe: row.list_unsubscribe,
      trackingDomain: row.tracking_domain,
    };
    if (row.dkim_domain === null || row.dkim_selector === null || row.dkim_keys.length === 0) return settings;
    const keys = [...row.dkim_keys].sort((a, b) => (a.type === b.type ? 0 : a.type === 'rsa' ? -1 : 1));
    const privateKeys = await Promise.all(
      keys.map(async (key) => {
        const pem = previous?.get(key.privateKey) ?? (await this.decrypt(accountId, key.privateKey));
        pems.set(key.privateKey, pem);
        return pem;
      }),
    );
    return { ...settings, dkim: { domain: row.dkim_domain, selector: row.dkim_selector, privateKeys } };
  }

  private async decrypt(accountId: string, encrypted: string): Promise<string> {
    const secret = await (this.secret ??= resolveSecret(this.options.dkimKeySecret).catch(
      (error: unknown) => {
        this.secret = undefined;
        throw error;
      },
    ));
    try {
      return await decryptPrivateKey(encrypted, secret);
    } catch (error) {
      throw new DkimKeyUnreadableError(accountId, error);
    }
  }
}
