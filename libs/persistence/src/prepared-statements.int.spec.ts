import type { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@relay/testing';
import { createDataSource } from './data-source.js';
import { prepared } from './prepared-statements.js';

const MARKED = prepared(`SELECT $1::int + 1 AS next /* prepared-statements.int.spec */`);
const UNMARKED = `SELECT $1::int + 2 AS next /* prepared-statements.int.spec */`;

let db: TestDatabase;
let dataSource: DataSource;

beforeAll(async () => {
  db = await createTestDatabase('prepared');
  // One connection: every query below runs on the session whose statements are listed.
  dataSource = createDataSource({ url: db.url, poolSize: 1 });
  await dataSource.initialize();
});

afterAll(async () => {
  await dataSource?.destroy();
  await db?.drop();
});

const preparedTexts = async (): Promise<string[]> => {
  const rows: { statement: string }[] = await dataSource.query(
    `SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%prepared-statements.int.spec%'`,
  );
  return rows.map((row) => row.statement);
};

describe('prepared statements of the data source', () => {
  it('sends a marked text as a named statement, prepared once for the connection', async () => {
    for (let i = 0; i < 3; i++) expect(await dataSource.query(MARKED, [i])).toEqual([{ next: i + 1 }]);
    expect(await preparedTexts()).toEqual([MARKED]);
  });

  it('sends other texts as before, and a marked text inside a transaction as the named statement', async () => {
    expect(await dataSource.query(UNMARKED, [1])).toEqual([{ next: 3 }]);
    await dataSource.transaction(async (manager) => {
      expect(await manager.query(MARKED, [41])).toEqual([{ next: 42 }]);
    });
    expect(await preparedTexts()).toEqual([MARKED]);
  });

  it('reports a failing marked statement like any other', async () => {
    await expect(dataSource.query(MARKED, ['not a number'])).rejects.toThrow(/invalid input syntax/);
    expect(await dataSource.query(MARKED, [1])).toEqual([{ next: 2 }]);
  });
});
