import { DataSource, type EntitySchema, type MixedList } from 'typeorm';
import { MIGRATIONS } from './migrations/migrations.js';
import { PreparingClient } from './prepared-statements.js';

export interface DataSourceOptions {
  readonly url: string;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- TypeORM's own entity list type
  readonly entities?: MixedList<Function | string | EntitySchema>;
  readonly poolSize?: number;
  readonly applicationName?: string;
}

/** A TypeORM data source on `url`. Schema changes come only from migrations, never synchronize. */
export function createDataSource(options: DataSourceOptions): DataSource {
  return new DataSource({
    type: 'postgres',
    url: options.url,
    entities: options.entities ?? [],
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    logging: ['error'],
    applicationName: options.applicationName ?? 'relay',
    // pg's Pool takes the client class to create: one that sends marked statements prepared.
    extra: { max: options.poolSize ?? 10, Client: PreparingClient },
  });
}

/** Arbitrary constant: the advisory lock that lets one process at a time migrate. */
const MIGRATION_LOCK = 7_251_001;

/**
 * Applies every pending migration, each in its own transaction. Processes starting together
 * (ingress, workers, projectors) take turns through an advisory lock.
 */
export async function runMigrations(url: string): Promise<void> {
  const dataSource = createDataSource({ url, poolSize: 2, applicationName: 'relay-migrations' });
  await dataSource.initialize();
  const lock = dataSource.createQueryRunner();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await dataSource.runMigrations({ transaction: 'each' });
  } finally {
    await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await lock.release();
    await dataSource.destroy();
  }
}
