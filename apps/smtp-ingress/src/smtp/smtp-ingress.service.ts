import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  SMTPServer,
  type SMTPServerAuthentication,
  type SMTPServerAuthenticationResponse,
  type SMTPServerDataStream,
  type SMTPServerOptions,
  type SMTPServerSession,
} from 'smtp-server';
import { counter, gauge, LOGGER, RELAY_CONFIG, type Logger, type RelayConfig } from '@relay/config';
import { createEvent } from '@relay/domain';
import { EVENT_LOG, type EventLog } from '@relay/event-log';
import { normaliseClientIp } from '@relay/persistence';
import { MessageIntake, refused, type Submitter } from '../intake/message-intake.js';
import { AuthThrottle, authThrottlePolicy } from './auth-throttle.js';
import { ConnectionLimiter } from './connection-limiter.js';
import { installSmtpServerPatches } from './smtp-server-patches.js';
import { SENDER_DIRECTORY, type SenderAccount, type SenderDirectory } from './sender-directory.port.js';
import { relayDeniedReply, SmtpReply } from './smtp-reply.js';
import { loadTlsCredentials, type TlsCredentials } from './tls-credentials.js';

const IP_LOOKUP_TTL_MS = 5000;
const IP_LOOKUP_CACHE_SIZE = 10_000;

const sessionsTotal = counter('relay_ingress_sessions_total', 'SMTP sessions opened.', ['port']);
const sessionsActive = gauge('relay_ingress_sessions_active', 'SMTP sessions open now.');
const authTotal = counter('relay_ingress_auth_total', 'SMTP AUTH attempts by outcome.', ['outcome']);

/** Per-session facts smtp-server does not keep for us. */
interface SessionState {
  /** The sender once known: by AUTH, or by the client IP's allow-list. */
  submitter?: Submitter;
  /** The IP allow-list was looked up for this session (the answer may be no account). */
  ipLookupDone?: boolean;
  /** RelayDenied already appended for this session: one event per session, however many RCPTs. */
  relayDeniedLogged?: boolean;
}

export interface Listener {
  readonly port: number;
  readonly implicitTls: boolean;
}

/**
 * The SMTP edge: one smtp-server per port of SMTP_PORTS (plain, STARTTLS offered) and
 * SMTPS_PORTS (implicit TLS). It decides who may relay (AUTH, or the client IP's allow-list),
 * enforces the limits, and hands DATA to MessageIntake.
 */
@Injectable()
export class SmtpIngressService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly servers: { server: SMTPServer; listener: Listener }[] = [];
  private readonly sessions = new Map<string, SessionState>();
  private readonly throttle: AuthThrottle;
  private readonly ipLookups = new Map<string, { account: SenderAccount | null; until: number }>();
  private readonly limiter: ConnectionLimiter;
  private tls?: TlsCredentials;

  constructor(
    @Inject(RELAY_CONFIG) private readonly config: RelayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(EVENT_LOG) private readonly eventLog: EventLog,
    @Inject(SENDER_DIRECTORY) private readonly senders: SenderDirectory,
    private readonly intake: MessageIntake,
  ) {
    this.limiter = new ConnectionLimiter(config.maxConnectionsPerIp);
    this.throttle = new AuthThrottle(authThrottlePolicy(config.authMaxFailures));
  }

  async onApplicationBootstrap(): Promise<void> {
    installSmtpServerPatches();
    this.tls = await loadTlsCredentials(this.config, this.logger);
    const listeners: Listener[] = [
      ...this.config.smtpPorts.map((port) => ({ port, implicitTls: false })),
      ...this.config.smtpsPorts.map((port) => ({ port, implicitTls: true })),
    ];
    for (const listener of listeners) await this.listen(listener);
  }

  /** Stops accepting, lets sessions in progress finish (up to smtp-server's close timeout), then resolves. */
  async onApplicationShutdown(): Promise<void> {
    await Promise.all(
      this.servers.map(({ server }) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
    this.servers.length = 0;
  }

  /** Where the servers listen (ports resolved, for listeners configured with port 0). */
  listening(): Listener[] {
    return this.servers.map(({ server, listener }) => {
      const address = server.server.address();
      return { ...listener, port: typeof address === 'object' && address ? address.port : listener.port };
    });
  }

  tlsSource(): string | undefined {
    return this.tls?.source;
  }

  private async listen(listener: Listener): Promise<void> {
    const server = new SMTPServer(this.serverOptions(listener));
    server.on('error', (error) => this.logger.warn('smtp connection error', { port: listener.port, error }));
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(listener.port, this.config.listenHost, () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    this.servers.push({ server, listener });
  }

  private serverOptions(listener: Listener): SMTPServerOptions {
    const tls = this.tls;
    if (!tls) throw new Error('TLS credentials not loaded');
    return {
      name: this.config.hostname,
      banner: 'relay ready',
      secure: listener.implicitTls,
      key: tls.key,
      cert: tls.cert,
      size: this.config.maxMessageSize,
      authMethods: ['PLAIN', 'LOGIN'],
      authOptional: true,
      allowInsecureAuth: this.config.allowPlaintextAuth,
      hideENHANCEDSTATUSCODES: false,
      hidePIPELINING: false,
      hide8BITMIME: false,
      hideSMTPUTF8: false,
      disableReverseLookup: true,
      maxRecipients: this.config.maxRecipients,
      maxCommandLength: 4096,
      socketTimeout: this.config.smtpIdleTimeoutMs,
      closeTimeout: 30_000,
      // Mail clients that AUTH send a few commands first; IP-allow-listed senders may send many.
      maxAllowedUnauthenticatedCommands: false,
      onConnect: (session, callback) => this.onConnect(session, callback),
      onClose: (session) => this.onClose(session),
      onAuth: (auth, session, callback) => {
        this.onAuth(auth, session).then(
          (response) => callback(null, response),
          (error: Error) => callback(error),
        );
      },
      onMailFrom: (_address, session, callback) => {
        // smtp-server takes RFC 8689's REQUIRETLS even though EHLO does not offer it. Delivery does
        // not honour it, so taking it would quietly drop the sender's demand for TLS all the way.
        // The flag is cleared here, as smtp-server keeps it for the session's next MAIL FROM.
        if (session.envelope.requireTLS) {
          session.envelope.requireTLS = false;
          callback(new SmtpReply(555, '5.5.4', 'REQUIRETLS is not supported'));
          return;
        }
        this.resolveSubmitter(session).then(
          () => callback(),
          (error: Error) => callback(error),
        );
      },
      onRcptTo: (address, session, callback) => {
        this.onRcptTo(address.address, session).then(
          () => callback(),
          (error: Error) => callback(error),
        );
      },
      onData: (stream, session, callback) => {
        this.onData(stream, session).then(
          (reply) => callback(null, reply),
          (error: Error) => callback(error),
        );
      },
    };
  }

  private state(session: SMTPServerSession): SessionState {
    let state = this.sessions.get(session.id);
    if (!state) {
      state = {};
      this.sessions.set(session.id, state);
    }
    return state;
  }

  private onConnect(session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const ip = normaliseIp(session.remoteAddress);
    if (this.throttle.isRefused(ip)) {
      refused.inc({ reason: 'auth-throttled' });
      callback(new SmtpReply(421, '4.7.0', 'Too many failed authentication attempts; try again later'));
      return;
    }
    if (!this.limiter.tryOpen(session.id, ip)) {
      refused.inc({ reason: 'too-many-connections' });
      this.logger.warn('refused: too many connections from one IP', { clientIp: ip });
      callback(new SmtpReply(421, '4.7.0', `Too many connections from [${ip}]; try again later`));
      return;
    }
    // The port the session came in on, also for a listener configured as port 0.
    sessionsTotal.inc({ port: String(session.localPort) });
    sessionsActive.inc();
    callback();
  }

  private onClose(session: SMTPServerSession): void {
    if (this.limiter.close(session.id)) sessionsActive.dec();
    this.sessions.delete(session.id);
  }

  private async onAuth(
    auth: SMTPServerAuthentication,
    session: SMTPServerSession,
  ): Promise<SMTPServerAuthenticationResponse> {
    const ip = normaliseIp(session.remoteAddress);
    if (this.throttle.isRefused(ip)) {
      authTotal.inc({ outcome: 'throttled' });
      this.logger.warn('auth refused: too many failures', { clientIp: ip, username: auth.username });
      throw new SmtpReply(421, '4.7.0', 'Too many failed authentication attempts; try again later');
    }
    const delay = this.throttle.delayMs(ip);
    if (delay > 0) await sleep(delay);
    const account = await this.senders.verifyCredentials(auth.username ?? '', auth.password ?? '');
    if (!account) {
      this.throttle.recordFailure(ip);
      authTotal.inc({ outcome: 'failed' });
      // Never log the password.
      this.logger.info('auth failed', { clientIp: ip, username: auth.username, method: auth.method });
      throw new SmtpReply(535, '5.7.8', 'Authentication credentials invalid');
    }
    this.throttle.recordSuccess(ip);
    authTotal.inc({ outcome: 'ok' });
    this.state(session).submitter = {
      accountId: account.id,
      allowedFrom: account.allowedFrom,
      auth: 'smtp-auth',
      username: account.username,
    };
    this.logger.info('auth ok', { clientIp: ip, username: account.username, accountId: account.id });
    return { user: account.id };
  }

  /** AUTH wins; without it, the client IP's allow-list decides (looked up once per session). */
  private async resolveSubmitter(session: SMTPServerSession): Promise<Submitter | undefined> {
    const state = this.state(session);
    if (state.submitter || state.ipLookupDone) return state.submitter;
    const account = await this.allowListed(normaliseIp(session.remoteAddress));
    state.ipLookupDone = true;
    if (account) {
      state.submitter = { accountId: account.id, allowedFrom: account.allowedFrom, auth: 'ip-allow-list' };
    }
    return state.submitter;
  }

  /**
   * The account whose allow-list holds `ip`, remembered for a few seconds: applications open one
   * connection per message, and a database query per connection was a good part of the ingress's
   * time per message. An allow-list change takes effect within IP_LOOKUP_TTL_MS.
   */
  private async allowListed(ip: string): Promise<SenderAccount | null> {
    const now = Date.now();
    const cached = this.ipLookups.get(ip);
    if (cached && cached.until > now) return cached.account;
    const account = await this.senders.findByClientIp(ip);
    if (this.ipLookups.size >= IP_LOOKUP_CACHE_SIZE) this.ipLookups.clear();
    this.ipLookups.set(ip, { account, until: now + IP_LOOKUP_TTL_MS });
    return account;
  }

  private async onRcptTo(recipient: string, session: SMTPServerSession): Promise<void> {
    const submitter = await this.resolveSubmitter(session);
    if (submitter) return;
    const ip = normaliseIp(session.remoteAddress);
    const state = this.state(session);
    refused.inc({ reason: 'relay-denied' });
    if (!state.relayDeniedLogged) {
      state.relayDeniedLogged = true;
      this.logger.info('refused: relaying denied', { clientIp: ip, recipient, reason: 'relay-denied' });
      // No account is known, so nobody is notified (no backscatter); the event is for analytics.
      const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
      await this.eventLog
        .append([
          createEvent('RelayDenied', {
            accountId: null,
            data: { reason: 'not-authenticated', clientIp: ip, mailFrom, recipients: [recipient] },
          }),
        ])
        .catch((error: unknown) =>
          this.logger.error('could not append RelayDenied', { clientIp: ip, error }),
        );
    }
    throw relayDeniedReply(ip);
  }

  private async onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const submitter = this.state(session).submitter;
    if (!submitter) {
      // Unreachable through smtp-server (DATA needs an accepted RCPT), kept as a guard.
      stream.resume();
      throw relayDeniedReply(normaliseIp(session.remoteAddress));
    }
    const envelope = session.envelope;
    return this.intake.receive(stream, {
      submitter,
      mailFrom: envelope.mailFrom ? envelope.mailFrom.address : '',
      recipients: envelope.rcptTo.map((r) => r.address),
      clientIp: normaliseIp(session.remoteAddress),
      clientHostname: session.clientHostname,
      helo: session.hostNameAppearsAs || '',
      tls: session.secure,
      smtpUtf8: envelope.smtpUtf8 === true,
      eightBitMime: envelope.bodyType === '8bitmime',
    });
  }
}

/** IPv4 clients on a dual-stack socket show up as ::ffff:a.b.c.d; accounts list them as a.b.c.d. */
function normaliseIp(ip: string): string {
  return normaliseClientIp(ip) ?? ip;
}
