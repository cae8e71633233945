import {
  Column,
  CreateDateColumn,
  Entity,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
  type ValueTransformer,
} from 'typeorm';

/** pg returns bigint as a string; byte limits stay far below 2^53, so a number is exact. */
const bigintAsNumber: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | null) => (value === null ? null : Number(value)),
};

/** One DKIM key of an account as the `accounts.dkim_keys` column holds it. */
export interface StoredDkimKey {
  readonly type: 'rsa' | 'ed25519';
  /** The name it is published under: the account's selector, `<selector>-ed25519` for Ed25519. */
  readonly selector: string;
  /** `dkimkey:v1:scrypt:...` (libs/mime encryptPrivateKey); never leaves the server. */
  readonly privateKey: string;
  readonly dnsRecord: { readonly name: string; readonly type: 'TXT'; readonly value: string };
  /** ISO 8601. */
  readonly createdAt: string;
}

/** A sending account: its SMTP credentials, who may relay through it, its plan and its rendering settings. */
@Entity({ name: 'accounts' })
export class AccountEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'text' })
  name!: string;

  @Column({ type: 'text', unique: true })
  username!: string;

  /** `scrypt$N$r$p$salt$hash` (password-hash.ts); never leaves the server. */
  @Column({ name: 'password_hash', type: 'text' })
  passwordHash!: string;

  /** CIDRs in Postgres's canonical text form (`10.0.0.0/8`, `2001:db8::/32`). */
  @Column({ name: 'allowed_ips', type: 'cidr', array: true, default: () => `'{}'` })
  allowedIps!: string[];

  /** Addresses, `@domain` entries or `*` (sender-authorisation.ts in libs/domain). */
  @Column({ name: 'allowed_from', type: 'text', array: true })
  allowedFrom!: string[];

  /** Null is unlimited. */
  @Column({ name: 'monthly_message_limit', type: 'int', nullable: true })
  monthlyMessageLimit!: number | null;

  /** Null is unlimited. */
  @Column({ name: 'monthly_byte_limit', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  monthlyByteLimit!: number | null;

  @Column({ name: 'overage_allowed', type: 'boolean', default: false })
  overageAllowed!: boolean;

  /** Line width for wrapping text parts; 0 turns wrapping off. */
  @Column({ name: 'wrap_width', type: 'int', default: 76 })
  wrapWidth!: number;

  @Column({ name: 'tracking_opens', type: 'boolean', default: false })
  trackingOpens!: boolean;

  @Column({ name: 'tracking_clicks', type: 'boolean', default: false })
  trackingClicks!: boolean;

  /** Also track links whose visible text is a URL (off: a rewritten one looks like phishing). */
  @Column({ name: 'track_url_text_links', type: 'boolean', default: false })
  trackUrlTextLinks!: boolean;

  /** Add List-Unsubscribe and List-Unsubscribe-Post (RFC 8058). */
  @Column({ name: 'list_unsubscribe', type: 'boolean', default: true })
  listUnsubscribe!: boolean;

  /** Host of the tracking URLs; null uses TRACKING_BASE_URL. */
  @Column({ name: 'tracking_domain', type: 'text', nullable: true })
  trackingDomain!: string | null;

  @Column({ name: 'bounce_notifications', type: 'boolean', default: false })
  bounceNotifications!: boolean;

  /** Lowercase; set together with the selector and the keys, or all empty (CHECK constraints). */
  @Column({ name: 'dkim_domain', type: 'text', nullable: true })
  dkimDomain!: string | null;

  /** Lowercase; the RSA key's selector (the Ed25519 key has its own, see dkimSelectorFor). */
  @Column({ name: 'dkim_selector', type: 'text', nullable: true })
  dkimSelector!: string | null;

  /** RSA first, then Ed25519 when asked; private keys encrypted (never returned by the API). */
  @Column({ name: 'dkim_keys', type: 'jsonb', default: () => `'[]'` })
  dkimKeys!: StoredDkimKey[];

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

/** The entities of this folder, for the DataSource's `entities`. */
export const ACCOUNT_ENTITIES = [AccountEntity];
