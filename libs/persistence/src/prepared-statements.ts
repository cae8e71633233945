import pg from 'pg';

/** Statement texts marked by `prepared`, with the name each is prepared under. */
const statementNames = new Map<string, string>();

/**
 * Marks a fixed SQL text as one the data source's connections prepare: each connection sends it
 * to Postgres as a named statement, parsed and analysed once per connection instead of on every
 * call (about a third less CPU per round trip on both sides, measured). Only for constant texts
 * on a hot path: each distinct text stays prepared on every pooled connection for its lifetime.
 * Returns the text unchanged, so a call site reads as before.
 *
 * Not for statements that find rows of a growing table by a list of keys, whether `key = ANY($1)`
 * or a join with `unnest(...)` / `jsonb_to_recordset(...)`: after five calls a connection may
 * settle on a generic plan made while the table was small and keep it until the next ANALYZE. For
 * the key list that plan is a sequential scan (comparing every row with every key) or a hash join
 * over the whole table, or an index on the wrong columns. Measured: 20-60 ms per 500-key batch of
 * the delivery report at 20 000 rows, and 60 ms per message for a suppression look-up at 200 000
 * listed addresses, where a plan made for the call takes ~2 ms and well under 1 ms.
 */
export function prepared(text: string): string {
  if (!statementNames.has(text)) statementNames.set(text, `relay_stmt_${statementNames.size + 1}`);
  return text;
}

type LooseQuery = (this: pg.Client, ...args: unknown[]) => unknown;

/**
 * The pg client of the data source's pool: a marked text with parameters goes out as its named
 * statement, everything else as before. TypeORM hands the pool's clients the SQL and parameters
 * untouched, so entity queries and `manager.query` both pass through here.
 */
export class PreparingClient extends pg.Client {}

// Assigned rather than overridden: Client.query has a dozen overloads that only the base spells out.
// eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the client as `this`
const baseQuery = pg.Client.prototype.query as unknown as LooseQuery;
(PreparingClient.prototype as unknown as { query: LooseQuery }).query = function (...args) {
  const [text, values, ...rest] = args;
  const name = typeof text === 'string' && Array.isArray(values) ? statementNames.get(text) : undefined;
  return name === undefined
    ? baseQuery.apply(this, args)
    : baseQuery.call(this, { name, text, values }, ...rest);
};
