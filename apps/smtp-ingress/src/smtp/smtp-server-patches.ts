import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;

type Callback = (error?: Error | null) => void;

interface ConnectionInternals {
  secure: boolean;
  name: string;
  _server: { options: { allowInsecureAuth?: boolean; maxClients?: number }; connections: Set<unknown> };
  init: (this: ConnectionInternals) => void;
  connectionReady: (this: ConnectionInternals) => void;
  _setListeners: (this: ConnectionInternals, ready: () => void) => void;
  send: (this: ConnectionInternals, code: number, data: unknown, context?: unknown) => void;
  handler_EHLO: (this: ConnectionInternals, command: Buffer | string, callback: Callback) => void;
  _isSupported: (this: ConnectionInternals, command: string) => boolean;
  /** Set only while EHLO of a cleartext session builds its capability list. */
  _relayHideAuth?: boolean;
}

let installed = false;

/**
 * Three behaviours smtp-server has no option for, patched in one place (the SMTP tests pin them):
 *
 * 1. It adds a default enhanced status code per reply code to application errors (550 becomes
 *    5.1.1 "mailbox unavailable" even for a relaying refusal). Our handlers start their message
 *    with the right code (SmtpReply); those lines are sent without an automatic one.
 * 2. It advertises AUTH in EHLO on a cleartext session even though it then refuses AUTH before
 *    STARTTLS. Clients should not be offered what they will be refused, so a cleartext EHLO leaves
 *    AUTH out unless plaintext AUTH is allowed; AUTH itself still answers 538 5.7.0 there.
 * 3. It waits a fixed 100 ms before the 220 greeting, to catch spam bots that talk first. Our
 *    clients authenticate or come from allow-listed IPs, and applications open one connection per
 *    message: the pause alone capped 20 sessions at ~200 messages/s. The greeting goes out at once.
 */
export function installSmtpServerPatches(): void {
  if (installed) return;
  installed = true;
  const proto = SMTPConnection.prototype as unknown as ConnectionInternals;

  const send = proto.send;
  proto.send = function (this: ConnectionInternals, code, data, context) {
    send.call(this, code, data, typeof data === 'string' && ENHANCED.test(data) ? false : context);
  };

  const ehlo = proto.handler_EHLO;
  proto.handler_EHLO = function (this: ConnectionInternals, command, callback) {
    this._relayHideAuth = !this.secure && !this._server.options.allowInsecureAuth;
    try {
      ehlo.call(this, command, callback);
    } finally {
      this._relayHideAuth = false;
    }
  };

  proto.init = function (this: ConnectionInternals) {
    this._setListeners(() => {
      if (
        this._server.options.maxClients &&
        this._server.connections.size > this._server.options.maxClients
      ) {
        this.send(421, `${this.name} Too many connected clients, try again in a moment`, false);
        return;
      }
      this.connectionReady();
    });
  };

  const isSupported = proto._isSupported;
  proto._isSupported = function (this: ConnectionInternals, command) {
    if (this._relayHideAuth && String(command).toUpperCase() === 'AUTH') return false;
    return isSupported.call(this, command);
  };
}
