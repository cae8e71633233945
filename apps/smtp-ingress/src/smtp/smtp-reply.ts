/** An error that smtp-server turns into the reply `<code> <enhanced> <text>`. */
export class SmtpReply extends Error {
  constructor(
    readonly responseCode: number,
    readonly enhancedCode: string,
    readonly text: string,
  ) {
    // smtp-server sends err.message after the code; it starts with our enhanced code, which
    // smtp-server-patches.ts makes the server keep instead of adding its own default.
    super(`${enhancedCode} ${text}`);
  }

  /** The whole reply line, as a client sees it. */
  get line(): string {
    return `${this.responseCode} ${this.message}`;
  }
}

export const relayDeniedReply = (clientIp: string, fromName?: string): SmtpReply =>
  new SmtpReply(
    550,
    '5.7.1',
    fromName === undefined
      ? `Relaying denied for [${clientIp}]`
      : `Relaying denied for [${clientIp}] / "${fromName}"`,
  );
