import type { TestProject } from 'vitest/node';
import { ensureKafkaBroker, TEST_KAFKA_BROKERS } from './kafka-broker.js';
import { prepareTemplateDatabase } from './test-database.js';

/**
 * Once per `vitest run`: the migrated template database on the local Postgres, and the Kafka
 * broker of deploy/kafka (started here if it is not running, and stopped again at the end).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [stopKafka, dropTemplate] = await Promise.all([ensureKafkaBroker(), prepareTemplateDatabase()]);
  project.provide('kafkaBrokers', TEST_KAFKA_BROKERS);
  return async () => {
    await dropTemplate();
    await stopKafka();
  };
}
