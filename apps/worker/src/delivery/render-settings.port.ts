import type { AccountRenderSettings } from '@relay/persistence';

/** How an account wants its mail rewritten on the way out: the accounts' read side defines it. */
export type RenderSettings = AccountRenderSettings;

/** DI token of the RenderSettingsLookup port (bound to the accounts' render settings read side). */
export const RENDER_SETTINGS = Symbol('RENDER_SETTINGS');

export interface RenderSettingsLookup {
  /** The account's settings, or null for an account that no longer exists. */
  get(accountId: string): Promise<RenderSettings | null>;
}
