import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { suppressionKey, type SuppressionList, type SuppressionSource } from '@relay/domain';
import { cursorTimeSql, decodeKeysetCursor, encodeKeysetCursor } from '../keyset-cursor.js';

/** Both lists, in the order isListed prefers them when an address is on both. */
export const SUPPRESSION_LISTS = ['bounce', 'unsubscribe'] as const satisfies readonly SuppressionList[];

export function isSuppressionList(value: unknown): value is SuppressionList {
  return (SUPPRESSION_LISTS as readonly unknown[]).includes(value);
}

/** One listing of the read model. */
export interface SuppressionEntry {
  /** As it was first listed. */
  readonly address: string;
  readonly list: SuppressionList;
  readonly reason: string;
  readonly source: SuppressionSource;
  /** When it was listed: the SuppressionAdded's occurredAt (ISO 8601). */
  readonly createdAt: string;
}

export interface SearchSuppressionsOptions {
  /** Both lists when absent. */
  readonly list?: SuppressionList;
  /** Case-insensitive substring of the address. */
  readonly q?: string;
  /** The nextCursor of the previous page (see isSuppressionCursor). */
  readonly cursor?: string;
  readonly limit: number;
}

export interface SuppressionPage {
  /** Newest first. */
  readonly items: readonly SuppressionEntry[];
  /** Pass as `cursor` for the next page; null on the last page. */
  readonly nextCursor: string | null;
}

interface EntryRow {
  address: string;
  list: SuppressionList;
  address_key: string;
  reason: string;
  source: SuppressionSource;
  created_at: Date;
  /** created_at to the microsecond, for the keyset cursor (a Date keeps only milliseconds). */
  cursor_at: string;
}

const ENTRY_COLUMNS = `
  address, list, address_key, reason, source, created_at, ${cursorTimeSql('created_at')} AS cursor_at`;

/** A search page's position: the last row's (created_at, address_key, list). */
interface Cursor {
  readonly createdAt: string;
  readonly addressKey: string;
  readonly list: SuppressionList;
}

const EXPORT_PAGE = 1000;
/** Keys per lookup of unlisted(). */
const UNLISTED_CHUNK = 10_000;

function encodeCursor(row: EntryRow): string {
  return encodeKeysetCursor(row.cursor_at, row.address_key, row.list);
}

function decodeCursor(cursor: string): Cursor | undefined {
  const decoded = decodeKeysetCursor(cursor, 2);
  const [addressKey, list] = decoded?.keys ?? [];
  if (!decoded || typeof addressKey !== 'string' || addressKey === '') return undefined;
  if (!isSuppressionList(list)) return undefined;
  return { createdAt: decoded.time, addressKey, list };
}

/** True for a nextCursor this repository handed out (the admin API validates ?cursor= with it). */
export function isSuppressionCursor(cursor: string): boolean {
  return decodeCursor(cursor) !== undefined;
}

/** LIKE pattern of a literal substring: its own %, _ and \ stand for themselves. */
const containing = (text: string): string => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

function toEntry(row: EntryRow): SuppressionEntry {
  return {
    address: row.address,
    list: row.list,
    reason: row.reason,
    source: row.source,
    createdAt: row.created_at.toISOString(),
  };
}

/**
 * Reads the Bounce and Unsubscribe lists that SuppressionsProjector writes. Addresses compare by
 * suppressionKey (@relay/domain): the domain case-insensitively, the local part as given. Rows
 * found by a list of keys: planned per call, not prepared (see `prepared`).
 */
const IS_LISTED_SQL = `
  SELECT address_key, list FROM suppressions
  WHERE account_id = $1 AND list = ANY($2::text[]) AND address_key = ANY($3::text[])`;

@Injectable()
export class SuppressionsRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /**
   * Which of `addresses` are on one of the account's lists: address (as passed) -> list. An
   * address on both lists maps to `bounce`. One index lookup per address on the primary key, in
   * one query (the policy stage calls this for every message).
   */
  async isListed(accountId: string, addresses: readonly string[]): Promise<Map<string, SuppressionList>> {
    const listed = new Map<string, SuppressionList>();
    if (addresses.length === 0) return listed;
    const keys = [...new Set(addresses.map(suppressionKey))];
    // list = ANY names both lists so that the primary key (account_id, list, address_key) serves
    // the lookup on any Postgres, not only on one with B-tree skip scan (18 and later).
    const rows: { address_key: string; list: SuppressionList }[] = await this.dataSource.query(
      IS_LISTED_SQL,
      [accountId, SUPPRESSION_LISTS, keys],
    );
    const byKey = new Map<string, SuppressionList>();
    for (const row of rows) {
      const known = byKey.get(row.address_key);
      if (known === undefined || SUPPRESSION_LISTS.indexOf(row.list) < SUPPRESSION_LISTS.indexOf(known))
        byKey.set(row.address_key, row.list);
    }
    for (const address of addresses) {
      const list = byKey.get(suppressionKey(address));
      if (list) listed.set(address, list);
    }
    return listed;
  }

  /**
   * The entries whose address (by its key) is not yet on the entry's list, in their order: what an
   * add still has to record. As current as the read model.
   */
  async unlisted<T extends { readonly address: string; readonly list: SuppressionList }>(
    accountId: string,
    entries: readonly T[],
  ): Promise<T[]> {
    const listed = new Set<string>();
    for (let i = 0; i < entries.length; i += UNLISTED_CHUNK) {
      const chunk = entries.slice(i, i + UNLISTED_CHUNK);
      const rows: { list: string; address_key: string }[] = await this.dataSource.query(
        `SELECT list, address_key FROM suppressions
         WHERE account_id = $1 AND list = ANY($2::text[]) AND address_key = ANY($3::text[])`,
        [accountId, SUPPRESSION_LISTS, [...new Set(chunk.map((e) => suppressionKey(e.address)))]],
      );
      for (const row of rows) listed.add(`${row.list} ${row.address_key}`);
    }
    return entries.filter((e) => !listed.has(`${e.list} ${suppressionKey(e.address)}`));
  }

  /** The listing of `address` (by its key) on `list`, or undefined when it is not listed. */
  async get(
    accountId: string,
    list: SuppressionList,
    address: string,
  ): Promise<SuppressionEntry | undefined> {
    const [row]: EntryRow[] = await this.dataSource.query(
      `SELECT ${ENTRY_COLUMNS} FROM suppressions WHERE account_id = $1 AND list = $2 AND address_key = $3`,
      [accountId, list, suppressionKey(address)],
    );
    return row && toEntry(row);
  }

  /**
   * An account's listings, newest first, a page at a time: keyset on (created_at, address_key,
   * list), so a page never repeats or skips a listing when new ones arrive in between. `q` matches
   * anywhere in the address, ignoring case (a scan of the account's rows: no trigram index). A
   * cursor that isSuppressionCursor refuses gives an empty page.
   */
  async search(accountId: string, options: SearchSuppressionsOptions): Promise<SuppressionPage> {
    const cursor = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    if (options.cursor !== undefined && cursor === undefined) return { items: [], nextCursor: null };
    const q = options.q === undefined || options.q === '' ? null : containing(options.q);
    const rows: EntryRow[] = await this.dataSource.query(
      `SELECT ${ENTRY_COLUMNS} FROM suppressions
       WHERE account_id = $1
         AND ($2::text IS NULL OR list = $2::text)
         AND ($3::text IS NULL OR address ILIKE $3::text)
         AND ($4::timestamptz IS NULL
              OR (created_at, address_key, list) < ($4::timestamptz, $5::text, $6::text))
       ORDER BY created_at DESC, address_key DESC, list DESC
       LIMIT $7`,
      [
        accountId,
        options.list ?? null,
        q,
        cursor?.createdAt ?? null,
        cursor?.addressKey ?? null,
        cursor?.list ?? null,
        options.limit + 1,
      ],
    );
    const page = rows.slice(0, options.limit);
    const last = page.at(-1);
    return {
      items: page.map(toEntry),
      nextCursor: rows.length > options.limit && last ? encodeCursor(last) : null,
    };
  }

  /**
   * Every listing of the account (of `list`, or both), by list then address key, read a page at a
   * time as the consumer asks for more: memory stays flat whatever the list's size. Listings made
   * or removed while it runs may or may not be included.
   */
  async *exportRows(accountId: string, list?: SuppressionList): AsyncGenerator<SuppressionEntry> {
    let after: { list: string; addressKey: string } | undefined;
    for (;;) {
      const rows: EntryRow[] = await this.dataSource.query(
        `SELECT ${ENTRY_COLUMNS} FROM suppressions
         WHERE account_id = $1
           AND ($2::text IS NULL OR list = $2::text)
           AND ($3::text IS NULL OR (list, address_key) > ($3::text, $4::text))
         ORDER BY list, address_key
         LIMIT $5`,
        [accountId, list ?? null, after?.list ?? null, after?.addressKey ?? null, EXPORT_PAGE],
      );
      for (const row of rows) yield toEntry(row);
      const last = rows.at(-1);
      if (!last || rows.length < EXPORT_PAGE) return;
      after = { list: last.list, addressKey: last.address_key };
    }
  }
}
