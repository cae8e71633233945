import { Controller, Get, Inject, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { LOGGER, type Logger } from '@relay/config';
import {
  createEvent,
  verifyTrackingToken,
  type Opened,
  type RelayEvent,
  type TrackingClaims,
} from '@relay/domain';
import { EVENT_LOG, type EventLog } from '@relay/event-log';
import { DeliveredAtRepository } from './delivered-at.repository.js';
import { confirmationPage, unsubscribedPage } from './pages.js';
import { suspectScanner, type ScannerReason } from './scanner-suspicion.js';
import { TRACKING_KEY } from './tracking-key.provider.js';
import {
  clientIp,
  followableUrl,
  FORM_URLENCODED,
  formFields,
  mediaTypeOf,
  MULTIPART_FORM,
  parsedFormFields,
  tokenInUrl,
  unsubscribeMethod,
} from './tracking-request.js';

/** A transparent 1x1 GIF (43 bytes): a two-colour palette whose first entry is marked transparent. */
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64');
/** An RFC 8058 one-click body is about 26 bytes; the page's button sends none. */
const MAX_FORM_BYTES = 16 * 1024;
/** Event size stays bounded whatever a client sends. */
const MAX_USER_AGENT_LENGTH = 512;
/** The delivery time only sharpens the scanner flag: a slow read model must not hold up the answer. */
const DELIVERY_LOOKUP_BUDGET_MS = 250;

/**
 * Every answer: nothing is cached (each hit is a fact), and the tracking URL, whose token holds the
 * recipient's address, is not sent on as Referer (a browser applies a redirect's Referrer-Policy to
 * the request that follows it).
 */
const COMMON_HEADERS = {
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'X-Robots-Tag': 'noindex, nofollow',
};
const TEXT_HEADERS = { ...COMMON_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' };
const PAGE_HEADERS = {
  ...COMMON_HEADERS,
  'Content-Type': 'text/html; charset=utf-8',
  // The pages run no script; their one form posts back to this origin.
  'Content-Security-Policy':
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
};

const KIND_NAMES = { o: 'open', c: 'click', u: 'unsubscribe' } as const;

type Kind = TrackingClaims['kind'];
type ClaimsOf<K extends Kind> = Extract<TrackingClaims, { kind: K }>;

interface Verified<K extends Kind> {
  readonly token: string;
  readonly claims: ClaimsOf<K>;
}

interface Hit {
  readonly data: Opened['data'];
  readonly reason: ScannerReason | undefined;
}

/**
 * The public tracking endpoints. The account, message and recipient come from the signed token
 * only, never from the Host header or anything else in the request. Express answers HEAD with a
 * GET route (Node sends the headers without the body), so every GET below also serves HEAD.
 */
@Controller()
export class TrackerController {
  private readonly logger: Logger;

  constructor(
    @Inject(TRACKING_KEY) private readonly key: string,
    @Inject(EVENT_LOG) private readonly eventLog: EventLog,
    @Inject(DeliveredAtRepository) private readonly deliveries: DeliveredAtRepository,
    @Inject(LOGGER) logger: Logger,
  ) {
    this.logger = logger.child({ component: 'tracker' });
  }

  @Get('o.z')
  async open(@Req() request: Request, @Res() response: Response): Promise<void> {
    const verified = this.verify(request, 'o');
    if (!verified) return this.refuse(request, response, 'o');
    const { claims } = verified;
    const hit = await this.hitOf(request, claims);
    await this.recordHit(
      createEvent('Opened', { accountId: claims.accountId, messageId: claims.messageId, data: hit.data }),
      hit.reason,
    );
    response
      .status(200)
      .set({ ...COMMON_HEADERS, 'Content-Type': 'image/gif', 'Content-Length': String(PIXEL.length) })
      .end(PIXEL);
  }

  @Get('c.z')
  async click(@Req() request: Request, @Res() response: Response): Promise<void> {
    const verified = this.verify(request, 'c');
    if (!verified) return this.refuse(request, response, 'c');
    const { claims } = verified;
    const location = followableUrl(claims.url);
    if (!location) return this.refuse(request, response, 'c', claims);
    const hit = await this.hitOf(request, claims);
    await this.recordHit(
      createEvent('Clicked', {
        accountId: claims.accountId,
        messageId: claims.messageId,
        data: { ...hit.data, url: claims.url },
      }),
      hit.reason,
    );
    response
      .status(302)
      .set({ ...COMMON_HEADERS, Location: location, 'Content-Length': '0' })
      .end();
  }

  /** Records nothing: link scanners follow every GET, and only the button's POST unsubscribes. */
  @Get('u.z')
  confirm(@Req() request: Request, @Res() response: Response): void {
    const verified = this.verify(request, 'u');
    if (!verified) return this.refuse(request, response, 'u');
    const { claims, token } = verified;
    this.logger.info('unsubscribe page shown', {
      accountId: claims.accountId,
      messageId: claims.messageId,
      recipient: claims.recipient,
      method: request.method,
      ip: clientIp(request.socket.remoteAddress),
    });
    response.status(200).set(PAGE_HEADERS).end(confirmationPage(claims.recipient, token));
  }

  /** RFC 8058 one-click is a POST to the List-Unsubscribe URL; the confirmation page's button posts here too. */
  @Post('u.z')
  async unsubscribe(@Req() request: Request, @Res() response: Response): Promise<void> {
    const verified = this.verify(request, 'u');
    if (!verified) return this.refuse(request, response, 'u');
    const { claims } = verified;
    const form = await this.formOf(request);
    if (!form) {
      response
        .status(413)
        .set({ ...TEXT_HEADERS, Connection: 'close' })
        .end('The form is too large.\n');
      return;
    }
    const event = createEvent('Unsubscribed', {
      accountId: claims.accountId,
      messageId: claims.messageId,
      data: {
        recipient: claims.recipient,
        method: unsubscribeMethod(form),
        ip: clientIp(request.socket.remoteAddress),
        userAgent: userAgentOf(request),
      },
    });
    const failure = await this.append(event);
    this.logHit(event, undefined, failure);
    // Never tell the recipient they are unsubscribed unless the log has it.
    if (failure) {
      response
        .status(503)
        .set({ ...TEXT_HEADERS, 'Retry-After': '60' })
        .end('Your request could not be recorded. Please try again in a minute.\n');
      return;
    }
    response.status(200).set(PAGE_HEADERS).end(unsubscribedPage(claims.recipient));
  }

  private verify<K extends Kind>(request: Request, kind: K): Verified<K> | undefined {
    const token = tokenInUrl(request.originalUrl);
    if (token === undefined) return undefined;
    const claims = verifyTrackingToken(token, this.key);
    // A genuine token of another kind is refused too: an open token does not unsubscribe.
    return claims?.kind === kind ? { token, claims: claims as ClaimsOf<K> } : undefined;
  }

  /** 400 with a short text: no redirect, no event. */
  private refuse(request: Request, response: Response, kind: Kind, claims?: TrackingClaims): void {
    this.logger.info('tracking request refused', {
      kind: KIND_NAMES[kind],
      reason: claims ? 'target is not an http(s) URL' : 'missing, forged or altered token',
      accountId: claims?.accountId,
      messageId: claims?.messageId,
      method: request.method,
      ip: clientIp(request.socket.remoteAddress),
    });
    response
      .status(400)
      .set(TEXT_HEADERS)
      .end(claims ? 'This link cannot be followed.\n' : 'This link is not valid.\n');
  }

  private async hitOf(request: Request, claims: ClaimsOf<'o' | 'c'>): Promise<Hit> {
    const circumstances = { method: request.method, userAgent: userAgentOf(request), at: new Date() };
    // The cheap signals first; the delivery time is looked up only when they do not decide.
    const reason =
      suspectScanner(circumstances) ??
      suspectScanner({ ...circumstances, deliveredAt: await this.deliveredAt(claims) });
    return {
      data: {
        recipient: claims.recipient,
        ip: clientIp(request.socket.remoteAddress),
        userAgent: circumstances.userAgent,
        suspectedScanner: reason !== undefined,
      },
      reason,
    };
  }

  private async deliveredAt(claims: TrackingClaims): Promise<Date | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const budget = new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, DELIVERY_LOOKUP_BUDGET_MS, undefined);
    });
    try {
      return await Promise.race([this.deliveries.deliveredAt(claims.messageId, claims.recipient), budget]);
    } catch (error) {
      this.logger.warn('delivery time unknown: scanner check by delivery time skipped', {
        accountId: claims.accountId,
        messageId: claims.messageId,
        error,
      });
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * An open or a click is recorded before the answer; if the log cannot take it, the recipient
   * still gets the pixel or the link (a broken link costs more than a lost statistic).
   */
  private async recordHit(event: RelayEvent, reason: ScannerReason | undefined): Promise<void> {
    this.logHit(event, reason, await this.append(event));
  }

  /** The error, or undefined once the event is durable. */
  private async append(event: RelayEvent): Promise<unknown> {
    try {
      await this.eventLog.append([event]);
      return undefined;
    } catch (error) {
      return error ?? new Error('append failed');
    }
  }

  /** The one log line of a recorded hit. */
  private logHit(event: RelayEvent, reason: ScannerReason | undefined, failure: unknown): void {
    const fields = {
      eventId: event.id,
      type: event.type,
      accountId: event.accountId,
      messageId: event.messageId,
      ...event.data,
      ...(reason === undefined ? {} : { scannerReason: reason }),
    };
    if (failure === undefined) this.logger.info('tracking event recorded', fields);
    else this.logger.error('tracking event NOT recorded', { ...fields, error: failure });
  }

  /** The form fields of a POST, or undefined when the body is larger than a form has reason to be. */
  private async formOf(request: Request): Promise<ReadonlyMap<string, string> | undefined> {
    const contentType = request.headers['content-type'];
    const type = mediaTypeOf(contentType);
    if (type !== FORM_URLENCODED && type !== MULTIPART_FORM) return new Map();
    // The application's default urlencoded parser may have read the body already; multipart it leaves.
    const parsed: unknown = request.body;
    if (typeof parsed === 'object' && parsed !== null && !Buffer.isBuffer(parsed)) {
      return parsedFormFields(parsed);
    }
    const body = await readLimited(request, MAX_FORM_BYTES);
    return body === undefined ? undefined : formFields(contentType, body);
  }
}

function userAgentOf(request: Request): string {
  return (request.headers['user-agent'] ?? '').slice(0, MAX_USER_AGENT_LENGTH);
}

async function readLimited(request: Request, max: number): Promise<string | undefined> {
  if (Number(request.headers['content-length'] ?? 0) > max) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
