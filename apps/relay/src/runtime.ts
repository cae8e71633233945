import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import type { Logger, RelayConfig } from '@relay/config';
import { insertEvents, KafkaEventLog, PostgresEventLog, type EventLog } from '@relay/event-log';
import {
  ACCOUNT_ENTITIES,
  createDataSource,
  OutboxRelay,
  runMigrations,
  startEmbeddedPostgres,
  writeEventsDirectly,
} from '@relay/persistence';
import { LocalDirectorySpool, PostgresSpool, type Spool } from '@relay/spool';

/** What every role shares in one process: the database, the event log, the spool and the config. */
export interface Runtime {
  readonly config: RelayConfig;
  readonly logger: Logger;
  readonly databaseUrl: string;
  /** The TypeORM data source every role of the process shares. */
  readonly dataSource: DataSource;
  readonly eventLog: EventLog;
  readonly spool: Spool;
  /** Lines for the start-up summary. */
  readonly summary: readonly string[];
  stop(): Promise<void>;
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

async function openEventLog(config: RelayConfig, databaseUrl: string, logger: Logger): Promise<EventLog> {
  if (config.kafkaBrokers) {
    return KafkaEventLog.connect({
      brokers: config.kafkaBrokers,
      topic: config.kafkaTopic,
      partitions: config.kafkaPartitions,
      replicationFactor: config.kafkaReplicationFactor,
      clientId: `relay-${config.hostname}`,
      groupIdPrefix: config.kafkaGroupPrefix,
      logger,
    });
  }
  return PostgresEventLog.connect({ url: databaseUrl, logger, applicationName: 'relay-event-log' });
}

/**
 * Starts (or connects to) Postgres and migrates it, opens the configured event log and spool, and
 * starts the outbox relay (events written in database transactions reach the log after commit).
 */
export async function startRuntime(config: RelayConfig, logger: Logger): Promise<Runtime> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.splice(0).reverse()) await stop();
  };
  try {
    const embedded = config.databaseUrl
      ? undefined
      : await startEmbeddedPostgres(config.dataDir, (line) =>
          logger.info(line, { component: 'embedded-postgres' }),
        );
    if (embedded) stops.push(() => embedded.stop());
    const databaseUrl = config.databaseUrl ?? embedded?.url;
    if (!databaseUrl) throw new Error('no database');
    await runMigrations(databaseUrl);
    const dataSource = await createDataSource({
      url: databaseUrl,
      entities: [...ACCOUNT_ENTITIES],
      poolSize: 20,
      applicationName: 'relay',
    }).initialize();
    stops.push(() => dataSource.destroy());

    const eventLog = await openEventLog(config, databaseUrl, logger.child({ component: 'event-log' }));
    stops.push(() => eventLog.close());
    // The Postgres log lives in this database: transactional writers put events straight into it.
    if (eventLog instanceof PostgresEventLog)
      writeEventsDirectly(dataSource, (manager, events) => insertEvents(manager, events));

    const spool =
      config.spool === 'postgres'
        ? await PostgresSpool.connect(databaseUrl)
        : new LocalDirectorySpool(join(config.dataDir, 'spool'));
    if (spool instanceof PostgresSpool) stops.push(() => spool.close());

    const outbox = new OutboxRelay({
      url: databaseUrl,
      append: (events) => eventLog.append(events),
      logger: logger.child({ component: 'outbox' }),
    });
    outbox.start();
    stops.push(() => outbox.stop());

    return {
      config,
      logger,
      databaseUrl,
      dataSource,
      eventLog,
      spool,
      summary: [
        `database:   ${embedded ? 'embedded Postgres ' : 'Postgres '}${redact(databaseUrl)}`,
        `event log:  ${
          config.kafkaBrokers
            ? `Kafka ${config.kafkaBrokers.join(',')} topic ${config.kafkaTopic}`
            : 'Postgres (table event_log)'
        }`,
        `spool:      ${config.spool === 'postgres' ? 'Postgres (table spool_chunks)' : join(config.dataDir, 'spool')}`,
      ],
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
