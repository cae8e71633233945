import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import type { DataSource } from 'typeorm';
import type { RelayEvent } from '@relay/domain';
import { KafkaEventLog, PostgresEventLog, type EventLog } from '@relay/event-log';
import { createTestDatabase, TEST_KAFKA_BROKERS, type TestDatabase } from '@relay/testing';
import { createDataSource } from '../../data-source.js';
import type { ProjectedEvent, Projection, ProjectionLog, ProjectionLogger } from '../projection.js';
import { ProjectionRunner } from '../projection-runner.js';

/**
 * Spec support for the projection int specs (the lib does not export it): a test database, an
 * event log (the Postgres one in that database, or a Kafka topic of its own) and a runner of one
 * projection on that log, which records the events it has committed.
 */

export const quiet: ProjectionLogger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** Passes batches through to the log and records what the runner finished (and can fail one once). */
export class ObservedLog implements ProjectionLog {
  readonly handled = new Map<string, number>();
  failAfterCommitOnce = false;

  constructor(private readonly log: EventLog) {}

  subscribe(options: Parameters<ProjectionLog['subscribe']>[0]): ReturnType<ProjectionLog['subscribe']> {
    return this.log.subscribe({
      ...options,
      handle: async (batch: readonly ProjectedEvent[]) => {
        await options.handle(batch);
        for (const { event } of batch) this.handled.set(event.id, (this.handled.get(event.id) ?? 0) + 1);
        if (this.failAfterCommitOnce) {
          this.failAfterCommitOnce = false;
          throw new Error('lost the log position commit');
        }
      },
    });
  }
}

export async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

interface KafkaTopic {
  readonly topic: string;
  readonly clientId: string;
}

export interface ProjectionHarness<P extends Projection = Projection> {
  readonly db: TestDatabase;
  readonly dataSource: DataSource;
  readonly log: EventLog;
  readonly observed: ObservedLog;
  readonly projector: P;
  /** How often the harness's runners look for a rebuild made elsewhere. */
  readonly generationCheckMs: number;
  /** The log's topic when it is Kafka: stopProjectionHarness deletes it and its consumer groups. */
  readonly kafka?: KafkaTopic;
  runner: ProjectionRunner;
}

export interface ProjectionHarnessOptions<P extends Projection> {
  /** Label of the test database. */
  readonly database: string;
  readonly projector: P;
  readonly generationCheckMs: number;
  /** For the first runner; startRunner takes its own. */
  readonly maxBatchSize?: number;
  /**
   * Run on Kafka: a topic test.<kafka>.<uuid> of 3 partitions, as client <kafka>-test. On the
   * Postgres log in the test database when unset.
   */
  readonly kafka?: string;
}

/** A runner of the harness's projection on its observed log; the caller starts it. */
export function startRunner(
  harness: Pick<ProjectionHarness, 'projector' | 'observed' | 'generationCheckMs'>,
  dataSource: DataSource,
  maxBatchSize?: number,
): ProjectionRunner {
  return new ProjectionRunner({
    projection: harness.projector,
    log: harness.observed,
    dataSource,
    logger: quiet,
    generationCheckMs: harness.generationCheckMs,
    ...(maxBatchSize === undefined ? {} : { maxBatchSize }),
  });
}

/**
 * Appends the events and waits until the runner has committed every one of the types its
 * projection takes (the log hands it no others).
 */
export async function project(
  harness: Pick<ProjectionHarness, 'log' | 'observed' | 'projector'>,
  events: readonly RelayEvent[],
): Promise<void> {
  await harness.log.append(events);
  const taken = new Set<string>(harness.projector.eventTypes);
  const awaited = events.filter((e) => taken.has(e.type));
  await until(() => awaited.every((e) => harness.observed.handled.has(e.id)), 'the projection');
}

async function deleteKafkaTopic({ topic, clientId }: KafkaTopic): Promise<void> {
  const admin = new Kafka({
    clientId: `${clientId}-admin`,
    brokers: TEST_KAFKA_BROKERS,
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  const { groups } = await admin.listGroups();
  const ours = groups.map((g) => g.groupId).filter((g) => g.startsWith(`${topic}.`));
  if (ours.length > 0) await admin.deleteGroups(ours).catch(() => undefined);
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
}

/** The database, the log and a started runner; a start that fails cleans up after itself. */
export async function startProjectionHarness<P extends Projection>(
  options: ProjectionHarnessOptions<P>,
): Promise<ProjectionHarness<P>> {
  const kafka =
    options.kafka === undefined
      ? undefined
      : { topic: `test.${options.kafka}.${randomUUID()}`, clientId: `${options.kafka}-test` };
  const cleanup: (() => Promise<unknown>)[] = [];
  try {
    if (kafka) cleanup.push(() => deleteKafkaTopic(kafka));
    const db = await createTestDatabase(options.database);
    cleanup.push(() => db.drop());
    const dataSource = await createDataSource({ url: db.url, poolSize: 6 }).initialize();
    cleanup.push(() => dataSource.destroy());
    const log = kafka
      ? await KafkaEventLog.connect({
          brokers: TEST_KAFKA_BROKERS,
          topic: kafka.topic,
          partitions: 3,
          replicationFactor: 1,
          clientId: kafka.clientId,
          groupIdPrefix: `${kafka.topic}.`,
          logger: quiet,
        })
      : await PostgresEventLog.connect({ url: db.url, pollIntervalMs: 50, logger: quiet });
    cleanup.push(() => log.close());
    const observed = new ObservedLog(log);
    const { projector, generationCheckMs } = options;
    const runner = startRunner({ projector, observed, generationCheckMs }, dataSource, options.maxBatchSize);
    const harness = { db, dataSource, log, observed, projector, generationCheckMs, kafka, runner };
    await runner.start();
    return harness;
  } catch (error) {
    for (const step of cleanup.reverse()) await step();
    throw error;
  }
}

/** Stops the runner and the log, drops the database, and deletes the Kafka topic if there is one. */
export async function stopProjectionHarness(harness: ProjectionHarness | undefined): Promise<void> {
  if (!harness) return;
  await harness.runner.stop();
  await harness.log.close();
  await harness.dataSource.destroy();
  await harness.db.drop();
  if (harness.kafka) await deleteKafkaTopic(harness.kafka);
}
