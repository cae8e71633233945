import type { EventEnvelope } from '../envelope.js';

interface TrackingHit {
  readonly recipient: string;
  readonly ip: string;
  readonly userAgent: string;
  /** Likely a link scanner (a HEAD request, or within a second of delivery): flagged, never dropped. */
  readonly suspectedScanner: boolean;
}

/** The open pixel was fetched. */
export type Opened = EventEnvelope<'Opened', TrackingHit>;

/** A tracked link was followed. */
export type Clicked = EventEnvelope<'Clicked', TrackingHit & { readonly url: string }>;

/** The recipient unsubscribed; the address joins the account's Unsubscribe list. */
export type Unsubscribed = EventEnvelope<
  'Unsubscribed',
  {
    readonly recipient: string;
    /** one-click: RFC 8058 POST; page: the confirmation page's button. */
    readonly method: 'one-click' | 'page';
    readonly ip: string;
    readonly userAgent: string;
  }
>;
