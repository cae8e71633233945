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

  /** Both set or both null (a CHECK constraint); the key pair comes with the DKIM issue. */
  @Column({ name: 'dkim_domain', type: 'text', nullable: true })
  dkimDomain!: string | null;

  @Column({ name: 'dkim_selector', type: 'text', nullable: true })
  dkimSelector!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

/** The entities of this folder, for the DataSource's `entities`. */
export const ACCOUNT_ENTITIES = [AccountEntity];
