import { SMTPServer } from 'smtp-server';

/** A reply the capture MX gives to one recipient: at RCPT TO, or after DATA. */
export interface CaptureReply {
  readonly code: number;
  readonly message: string;
  /** Give this reply after DATA instead of at RCPT TO. */
  readonly atData?: boolean;
}

export interface CapturedMessage {
  readonly mailFrom: string;
  readonly recipients: string[];
  readonly raw: Buffer;
  readonly receivedAt: Date;
  readonly tls: boolean;
  /** The SMTP session (connection) it came over. */
  readonly session: string;
}

export type ReplyRule = (recipient: string, attempt: number) => CaptureReply | undefined;

/**
 * A real SMTP server for tests that stands in for the recipients' MX: it stores what it receives
 * and answers per recipient as `rule` says (250 by default; e.g. 451 on the first attempt, or 550
 * 5.1.1), so tests see exactly what the relay delivered and how it reacts. 127.0.0.1 only.
 */
export class CaptureMx {
  readonly messages: CapturedMessage[] = [];
  private readonly attempts = new Map<string, number>();
  private server?: SMTPServer;
  private waiters: { count: number; resolve: () => void }[] = [];
  port = 0;

  constructor(private rule: ReplyRule = () => undefined) {}

  setRule(rule: ReplyRule): void {
    this.rule = rule;
  }

  /** How many times a recipient was offered (RCPT TO), over all connections. */
  attemptsFor(recipient: string): number {
    return this.attempts.get(recipient.toLowerCase()) ?? 0;
  }

  /** Messages delivered to `recipient`. */
  deliveredTo(recipient: string): CapturedMessage[] {
    return this.messages.filter((m) => m.recipients.includes(recipient.toLowerCase()));
  }

  async start(): Promise<this> {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['AUTH'],
      hideSTARTTLS: true,
      disableReverseLookup: true,
      logger: false,
      size: 64 * 1024 * 1024,
      closeTimeout: 1000,
      onRcptTo: (address, session, callback) => {
        const recipient = address.address.toLowerCase();
        const attempt = (this.attempts.get(recipient) ?? 0) + 1;
        this.attempts.set(recipient, attempt);
        const reply = this.rule(recipient, attempt);
        const state = session as unknown as { dataReplies?: Map<string, CaptureReply> };
        if (reply && !reply.atData) {
          callback(Object.assign(new Error(reply.message), { responseCode: reply.code }));
          return;
        }
        if (reply?.atData) (state.dataReplies ??= new Map()).set(recipient, reply);
        callback();
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const recipients = session.envelope.rcptTo.map((r) => r.address.toLowerCase());
          const dataReply = (session as unknown as { dataReplies?: Map<string, CaptureReply> }).dataReplies;
          const failing = recipients.map((r) => dataReply?.get(r)).find((r) => r !== undefined);
          if (dataReply) dataReply.clear();
          if (failing) {
            callback(Object.assign(new Error(failing.message), { responseCode: failing.code }));
            return;
          }
          this.messages.push({
            mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            recipients,
            raw: Buffer.concat(chunks),
            receivedAt: new Date(),
            tls: session.secure,
            session: session.id,
          });
          this.waiters = this.waiters.filter((w) => {
            if (this.messages.length < w.count) return true;
            w.resolve();
            return false;
          });
          callback(null, 'Ok: captured');
        });
      },
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const address = this.server.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
    return this;
  }

  /** Resolves once `count` messages in all have arrived. */
  async waitForMessages(count: number, timeoutMs = 30_000): Promise<void> {
    if (this.messages.length >= count) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`capture MX has ${this.messages.length} of ${count} messages`)),
        timeoutMs,
      );
      this.waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
