export * from './render-message.js';
export { DKIM_SIGNED_FIELDS, dkimSelectorFor, type DkimKeyType, type DkimSigning } from './dkim-sign.js';
export * from './dkim-keys.js';
export type { RewriteSummary } from './message-rewriter.js';
export type { TrackingCounts } from './link-tracking.js';
