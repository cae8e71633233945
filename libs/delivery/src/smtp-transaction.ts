import type { Readable } from 'node:stream';
import type SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { OutboundPool } from './outbound-pool.js';

export interface TransactionRequest {
  /** The return path (MAIL FROM), a VERP address. */
  readonly mailFrom: string;
  readonly recipients: readonly string[];
  readonly size: number;
  readonly smtpUtf8: boolean;
  readonly eightBitMime: boolean;
  /** Opens the message body; called again for each host tried. */
  openBody(): Promise<Readable>;
}

/** What one recipient got from this attempt. */
export type RecipientResult =
  | {
      readonly recipient: string;
      readonly outcome: 'accepted';
      readonly reply: string;
      readonly host: string;
    }
  /** The server answered with a 4xx or 5xx reply for this recipient (at MAIL, RCPT or DATA). */
  | {
      readonly recipient: string;
      readonly outcome: 'rejected';
      readonly code: number;
      readonly reply: string;
      readonly host: string;
    }
  /** No SMTP answer: connection refused, timeout, TLS failure, lost connection. */
  | {
      readonly recipient: string;
      readonly outcome: 'failed';
      readonly reason: string;
      readonly host?: string;
    };

interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  recipient?: string;
  rejectedErrors?: SmtpError[];
}

const oneLine = (reply: string): string => reply.replace(/\r?\n/g, ' ').trim();

/**
 * One SMTP transaction for recipients of one domain: tries the route's hosts in order until one
 * accepts a connection (RFC 5321 5.1: a host that cannot be reached is skipped); once a host has
 * answered, its answers are final for this attempt, so a message is never sent to two hosts.
 * Rejects only when the body cannot be opened.
 */
export async function sendTransaction(
  pool: OutboundPool,
  hosts: readonly { host: string; port: number }[],
  request: TransactionRequest,
): Promise<RecipientResult[]> {
  let lastFailure = 'no host to try';
  let lastHost: string | undefined;
  for (const { host, port } of hosts) {
    let pooled;
    try {
      pooled = await pool.acquire(host, port);
    } catch (error) {
      lastFailure = `${host}: ${(error as Error).message}`;
      lastHost = host;
      continue;
    }
    let body: Readable;
    try {
      body = await request.openBody();
    } catch (error) {
      // The body could not be read (e.g. gone from the spool): not the host's doing, and no
      // other host would do better. The connection was not used; the caller decides.
      pooled.release(true);
      throw error;
    }
    try {
      const info = await send(pooled.connection, request, body);
      pooled.release(true);
      const rejected = new Map((info.rejectedErrors ?? []).map((e) => [e.recipient ?? '', e]));
      return request.recipients.map((recipient) => {
        const error = rejected.get(recipient);
        return error
          ? rejection(recipient, error, host)
          : { recipient, outcome: 'accepted', reply: oneLine(info.response), host };
      });
    } catch (error) {
      pooled.release(false);
      return failureResults(request.recipients, error as SmtpError, host);
    }
  }
  return request.recipients.map((recipient) => ({
    recipient,
    outcome: 'failed',
    reason: lastFailure,
    ...(lastHost ? { host: lastHost } : {}),
  }));
}

function send(
  connection: SMTPConnection,
  request: TransactionRequest,
  body: Readable,
): Promise<SMTPConnection.SentMessageInfo> {
  return new Promise((resolve, reject) => {
    body.once('error', reject);
    connection.send(
      {
        from: request.mailFrom,
        to: [...request.recipients],
        size: request.size,
        use8BitMime: request.eightBitMime,
      },
      body,
      (error, info) => {
        body.destroy();
        if (error || !info) reject(error ?? new Error('no result'));
        else resolve(info);
      },
    );
  });
}

function rejection(recipient: string, error: SmtpError, host: string): RecipientResult {
  return {
    recipient,
    outcome: 'rejected',
    code: error.responseCode ?? 0,
    reply: oneLine(error.response ?? error.message),
    host,
  };
}

/** Maps a failed send to per-recipient results: per-RCPT replies where the server gave them. */
function failureResults(recipients: readonly string[], error: SmtpError, host: string): RecipientResult[] {
  const perRecipient = new Map((error.rejectedErrors ?? []).map((e) => [e.recipient ?? '', e]));
  return recipients.map((recipient) => {
    const specific = perRecipient.get(recipient);
    if (specific?.responseCode) return rejection(recipient, specific, host);
    if (error.responseCode) return rejection(recipient, error, host);
    return { recipient, outcome: 'failed', reason: `${host}: ${error.message}`, host };
  });
}
