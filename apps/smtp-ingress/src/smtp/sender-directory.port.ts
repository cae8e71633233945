/** The account facts the SMTP edge needs to decide who may relay. */
export interface SenderAccount {
  readonly id: string;
  readonly username: string;
  readonly allowedFrom: readonly string[];
}

/** DI token for the SenderDirectory port (bound to the accounts repository). */
export const SENDER_DIRECTORY = Symbol('SENDER_DIRECTORY');

export interface SenderDirectory {
  /** The account whose SMTP credentials these are, or null. */
  verifyCredentials(username: string, password: string): Promise<SenderAccount | null>;
  /** The account whose `allowedIps` holds `ip` (longest prefix wins), or null. */
  findByClientIp(ip: string): Promise<SenderAccount | null>;
}
