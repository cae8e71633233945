import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;

type Callback = (error?: Error | null) => void;

interface ConnectionInternals {
  secure: boolean;
  _server: { options: { allowInsecureAuth?: boolean } };
  send: (this: ConnectionInternals, code: number, data: unknown, context?: unknown) => void;
  handler_EHLO: (this: ConnectionInternals, command: Buffer | string, callback: Callback) => void;
  _isSupported: (this: ConnectionInternals, command: string) => boolean;
  /** Set only while EHLO of a cleartext session builds its capability list. */
  _relayHideAuth?: boolean;
}

let installed = false;

/**
 * Two behaviours smtp-server has no option for, patched in one place (the SMTP tests pin both):
 *
 * 1. It adds a default enhanced status code per reply code to application errors (550 becomes
 *    5.1.1 "mailbox unavailable" even for a relaying refusal). Our handlers start their message
 *    with the right code (SmtpReply); those lines are sent without an automatic one.
 * 2. It advertises AUTH in EHLO on a cleartext session even though it then refuses AUTH before
 *    STARTTLS. Clients should not be offered what they will be refused, so a cleartext EHLO leaves
 *    AUTH out unless plaintext AUTH is allowed; AUTH itself still answers 538 5.7.0 there.
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

  const isSupported = proto._isSupported;
  proto._isSupported = function (this: ConnectionInternals, command) {
    if (this._relayHideAuth && String(command).toUpperCase() === 'AUTH') return false;
    return isSupported.call(this, command);
  };
}
