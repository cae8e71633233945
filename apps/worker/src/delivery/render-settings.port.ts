/** How an account wants its mail rewritten on the way out (issue 6 settings). */
export interface RenderSettings {
  readonly wrapWidth: number;
  readonly tracking: { readonly opens: boolean; readonly clicks: boolean; readonly urlTextLinks: boolean };
  readonly listUnsubscribe: boolean;
  readonly trackingDomain: string | null;
  /** Decrypted private keys: RSA first, then Ed25519 when the account has one. */
  readonly dkim?: {
    readonly domain: string;
    readonly selector: string;
    readonly privateKeys: readonly string[];
  };
}

/** DI token of the RenderSettingsLookup port (bound to the accounts' render settings read side). */
export const RENDER_SETTINGS = Symbol('RENDER_SETTINGS');

export interface RenderSettingsLookup {
  /** The account's settings, or null for an account that no longer exists. */
  get(accountId: string): Promise<RenderSettings | null>;
}
