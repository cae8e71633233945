import { createHmac, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource, QueryFailedError, type EntityManager } from 'typeorm';
import { invalidAllowedFromEntries } from '@relay/domain';
import { appendToOutbox } from '../outbox/outbox.js';
import { AccountEntity } from './account.entity.js';
import { planChangedEvents, planOf } from './account-plan.js';
import { normaliseClientIp, parseCidr } from './ip-address.js';
import { hashPassword, verifyPassword } from './password-hash.js';

export interface DkimSettings {
  readonly domain: string;
  readonly selector: string;
}

/** Everything an account is created with; what is left out takes the column's default. */
export interface NewAccount {
  readonly name: string;
  readonly username: string;
  readonly password: string;
  readonly allowedFrom: readonly string[];
  readonly allowedIps?: readonly string[];
  readonly monthlyMessageLimit?: number | null;
  readonly monthlyByteLimit?: number | null;
  readonly overageAllowed?: boolean;
  readonly wrapWidth?: number;
  readonly trackingOpens?: boolean;
  readonly trackingClicks?: boolean;
  readonly trackUrlTextLinks?: boolean;
  readonly listUnsubscribe?: boolean;
  readonly trackingDomain?: string | null;
  readonly bounceNotifications?: boolean;
  readonly dkim?: DkimSettings | null;
}

/** A PATCH: only the fields present change (null clears a nullable one). */
export type AccountPatch = Partial<NewAccount>;

export interface AccountPage {
  readonly items: readonly AccountEntity[];
  /** Pass as `after` for the next page; null on the last page. */
  readonly nextCursor: string | null;
}

/** The username belongs to another account (unique constraint). */
export class UsernameTakenError extends Error {
  constructor(readonly username: string) {
    super(`username "${username}" is taken`);
  }
}

/** Input the table cannot hold; the admin API validates the same rules first and answers 400. */
export class InvalidAccountError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** How long a successful AUTH spares the next one its scrypt. */
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX_ENTRIES = 10_000;

function normaliseAllowedIps(allowedIps: readonly string[]): string[] {
  return allowedIps.map((text, i) => {
    const parsed = parseCidr(text);
    if (!parsed.ok) throw new InvalidAccountError(`allowedIps[${i}]`, parsed.reason);
    return parsed.cidr;
  });
}

function checkAllowedFrom(allowedFrom: readonly string[]): string[] {
  if (allowedFrom.length === 0) throw new InvalidAccountError('allowedFrom', 'must list at least one entry');
  const invalid = invalidAllowedFromEntries(allowedFrom);
  if (invalid.length > 0) {
    throw new InvalidAccountError('allowedFrom', `not an address, @domain or *: ${invalid.join(', ')}`);
  }
  return [...allowedFrom];
}

/** The columns a patch sets (the password is hashed by the caller, outside the transaction). */
function columnsOf(patch: AccountPatch): Partial<AccountEntity> {
  const columns: Partial<AccountEntity> = {};
  const copy = <K extends keyof AccountEntity & keyof AccountPatch>(key: K): void => {
    if (patch[key] !== undefined) (columns as Record<string, unknown>)[key] = patch[key];
  };
  copy('name');
  copy('username');
  copy('monthlyMessageLimit');
  copy('monthlyByteLimit');
  copy('overageAllowed');
  copy('wrapWidth');
  copy('trackingOpens');
  copy('trackingClicks');
  copy('trackUrlTextLinks');
  copy('listUnsubscribe');
  if (patch.trackingDomain !== undefined)
    columns.trackingDomain = patch.trackingDomain?.toLowerCase() ?? null;
  copy('bounceNotifications');
  if (patch.allowedIps !== undefined) columns.allowedIps = normaliseAllowedIps(patch.allowedIps);
  if (patch.allowedFrom !== undefined) columns.allowedFrom = checkAllowedFrom(patch.allowedFrom);
  if (patch.dkim !== undefined) {
    columns.dkimDomain = patch.dkim?.domain.toLowerCase() ?? null;
    columns.dkimSelector = patch.dkim?.selector ?? null;
  }
  return columns;
}

function isUsernameConflict(error: unknown): boolean {
  if (!(error instanceof QueryFailedError)) return false;
  const cause = error.driverError as { code?: string; constraint?: string };
  return cause.code === '23505' && cause.constraint === 'accounts_username_unique';
}

interface Verified {
  readonly username: string;
  readonly passwordHash: string;
  readonly expiresAt: number;
}

/**
 * Accounts in Postgres. Every change that touches a limit or overageAllowed records
 * AccountPlanChanged through the outbox in the same transaction as the row.
 */
@Injectable()
export class AccountsRepository {
  /** Successful verifications by username and a keyed digest of the password (never the password). */
  private readonly verified = new Map<string, Verified>();
  private readonly digestKey = randomBytes(32);
  private dummyHash: Promise<string> | undefined;

  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {
    if (!dataSource.hasMetadata(AccountEntity)) {
      throw new Error(
        'AccountEntity is not registered with the DataSource: add ACCOUNT_ENTITIES to its entities',
      );
    }
  }

  async create(input: NewAccount): Promise<AccountEntity> {
    const columns = columnsOf(input);
    columns.allowedIps ??= [];
    const passwordHash = await hashPassword(input.password);
    return this.dataSource.transaction(async (manager) => {
      // ON CONFLICT DO NOTHING rather than a failed INSERT: TypeORM logs a failed query with its
      // parameters, and those would include the password hash.
      const inserted = await manager
        .createQueryBuilder()
        .insert()
        .into(AccountEntity)
        .values({ ...columns, passwordHash })
        .orIgnore()
        .returning('id')
        .execute();
      const id = (inserted.raw as { id?: string }[])[0]?.id;
      if (id === undefined) throw new UsernameTakenError(input.username);
      const account = await manager.getRepository(AccountEntity).findOneByOrFail({ id });
      await appendToOutbox(manager, planChangedEvents(id, planOf(account)));
      return account;
    });
  }

  /** Applies `patch`; null when no account has `id`. */
  async update(id: string, patch: AccountPatch): Promise<AccountEntity | null> {
    if (!UUID.test(id)) return null;
    const columns = columnsOf(patch);
    if (patch.password !== undefined) columns.passwordHash = await hashPassword(patch.password);
    try {
      return await this.dataSource.transaction(async (manager) => {
        // The row lock orders concurrent changes of one account, and so their events (outbox.ts).
        const before = await this.lockedById(manager, id);
        if (!before) return null;
        if (Object.keys(columns).length === 0) return before;
        const accounts = manager.getRepository(AccountEntity);
        // Checked first so that the usual conflict is no failed query (TypeORM would log its
        // parameters, a new password hash among them); the constraint still decides a race.
        if (columns.username !== undefined && columns.username !== before.username) {
          if (await accounts.existsBy({ username: columns.username }))
            throw new UsernameTakenError(columns.username);
        }
        await accounts.update({ id }, columns);
        const after = await accounts.findOneByOrFail({ id });
        await appendToOutbox(manager, planChangedEvents(id, planOf(after), planOf(before)));
        this.forget(before.username);
        return after;
      });
    } catch (error) {
      if (isUsernameConflict(error)) throw new UsernameTakenError(patch.username ?? '');
      throw error;
    }
  }

  async get(id: string): Promise<AccountEntity | null> {
    if (!UUID.test(id)) return null;
    return this.dataSource.getRepository(AccountEntity).findOneBy({ id });
  }

  /** Oldest first; `after` is the `nextCursor` of the previous page. */
  async list(options: { readonly limit: number; readonly after?: string }): Promise<AccountPage> {
    const query = this.dataSource
      .getRepository(AccountEntity)
      .createQueryBuilder('a')
      .orderBy('a.created_at', 'ASC')
      .addOrderBy('a.id', 'ASC')
      .limit(options.limit + 1);
    if (options.after !== undefined) {
      if (!UUID.test(options.after)) return { items: [], nextCursor: null };
      // Keyset on (created_at, id): stable while accounts are added, unlike an offset.
      query.where('(a.created_at, a.id) > (SELECT c.created_at, c.id FROM accounts c WHERE c.id = :after)', {
        after: options.after,
      });
    }
    const rows = await query.getMany();
    const items = rows.slice(0, options.limit);
    return { items, nextCursor: rows.length > options.limit ? (items.at(-1)?.id ?? null) : null };
  }

  async findByUsername(username: string): Promise<AccountEntity | null> {
    return this.dataSource.getRepository(AccountEntity).findOneBy({ username });
  }

  /**
   * The account whose `allowedIps` holds `ip` most specifically (longest prefix); among equally
   * specific ones, the oldest account, then the lowest id. IPv4-mapped IPv6 counts as IPv4.
   */
  async findByClientIp(ip: string): Promise<AccountEntity | null> {
    const address = normaliseClientIp(ip);
    if (address === null) return null;
    // A scan of accounts: `<<= ANY(array)` has no index, which is fine for thousands of accounts.
    return this.dataSource
      .getRepository(AccountEntity)
      .createQueryBuilder('a')
      .where(
        `a.id = (
          SELECT b.id FROM accounts b
          WHERE CAST(:ip AS inet) <<= ANY(b.allowed_ips)
          ORDER BY (SELECT max(masklen(c)) FROM unnest(b.allowed_ips) AS c WHERE CAST(:ip AS inet) <<= c) DESC,
                   b.created_at, b.id
          LIMIT 1)`,
        { ip: address },
      )
      .getOne();
  }

  /**
   * The account when `password` is its password, else null. A success is remembered for a minute,
   * keyed by the username and a digest of the password, and reused only while the row still holds
   * the same hash: a password change (in any process) invalidates it at once. An unknown username
   * costs a scrypt too, so timing does not tell which usernames exist.
   */
  async verifyCredentials(username: string, password: string): Promise<AccountEntity | null> {
    const account = await this.findByUsername(username);
    if (!account) {
      await verifyPassword(
        password,
        await (this.dummyHash ??= hashPassword(randomBytes(16).toString('hex'))),
      );
      return null;
    }
    const key = `${username}\u0000${createHmac('sha256', this.digestKey).update(password).digest('base64')}`;
    const hit = this.verified.get(key);
    if (hit && hit.passwordHash === account.passwordHash && hit.expiresAt > Date.now()) return account;
    if (!(await verifyPassword(password, account.passwordHash))) return null;
    this.remember(key, {
      username,
      passwordHash: account.passwordHash,
      expiresAt: Date.now() + VERIFIED_TTL_MS,
    });
    return account;
  }

  private remember(key: string, entry: Verified): void {
    this.verified.delete(key);
    if (this.verified.size >= VERIFIED_MAX_ENTRIES) {
      const oldest = this.verified.keys().next();
      if (!oldest.done) this.verified.delete(oldest.value);
    }
    this.verified.set(key, entry);
  }

  private forget(username: string): void {
    for (const [key, entry] of this.verified) if (entry.username === username) this.verified.delete(key);
  }

  private lockedById(manager: EntityManager, id: string): Promise<AccountEntity | null> {
    return manager
      .getRepository(AccountEntity)
      .findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
  }
}
