import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { createEvent, type RelayEvent } from '@relay/domain';
import { TEST_KAFKA_BROKERS } from '@relay/testing';
import { eventLogContract, type ContractHarness, type LogNamespace } from '../event-log.contract.js';
import type { LoggedEvent } from '../event-log.port.js';
import { KafkaEventLog, type KafkaEventLogLogger } from './kafka-event-log.adapter.js';

const PARTITIONS = 4;

// Handler failures are part of the contract; their log lines would only bury real failures.
const quietLogger: KafkaEventLogLogger = { warn: () => undefined, error: () => undefined };

let sharedAdmin: Promise<Admin> | undefined;
function admin(): Promise<Admin> {
  sharedAdmin ??= (async () => {
    const client = new Kafka({
      clientId: 'event-log-test-admin',
      brokers: TEST_KAFKA_BROKERS,
      logLevel: logLevel.NOTHING,
    });
    const connected = client.admin();
    await connected.connect();
    return connected;
  })();
  return sharedAdmin;
}

afterAll(async () => {
  await (await sharedAdmin)?.disconnect();
});

/**
 * Every namespace is a topic of its own, and its group ids get the topic as a prefix: the contract
 * reuses group names, and test files run in parallel against one broker.
 */
function kafkaNamespace(): LogNamespace & { readonly topic: string } {
  const topic = `test.event-log.${randomUUID()}`;
  const groupIdPrefix = `${topic}.`;
  return {
    topic,
    open: () =>
      KafkaEventLog.connect({
        brokers: TEST_KAFKA_BROKERS,
        topic,
        partitions: PARTITIONS,
        replicationFactor: 1,
        clientId: 'event-log-test',
        groupIdPrefix,
        // The replay contract writes events dated days ago; 7-day retention could delete them
        // between the append and the read.
        retentionMs: -1,
        logger: quietLogger,
      }),
    dispose: async () => {
      const client = await admin();
      const { groups } = await client.listGroups();
      const ours = groups.map((g) => g.groupId).filter((id) => id.startsWith(groupIdPrefix));
      if (ours.length > 0) await client.deleteGroups(ours).catch(() => undefined);
      await client.deleteTopics({ topics: [topic] }).catch(() => undefined);
    },
  };
}

const harness: ContractHarness = { freshNamespace: async () => kafkaNamespace() };

eventLogContract('Kafka', () => harness);

function suppression(accountId: string, seq: number): RelayEvent {
  return createEvent('SuppressionAdded', {
    accountId,
    data: { address: `user${seq}@example.test`, list: 'bounce', source: 'admin', reason: `seq ${seq}` },
  });
}

async function waitUntil(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the condition');
    await sleep(20);
  }
}

describe('KafkaEventLog', () => {
  it('shares the partitions between the members of a group, each event going to one of them', async () => {
    const ns = kafkaNamespace();
    const first = await ns.open();
    const second = await ns.open();
    try {
      const seen = { first: [] as LoggedEvent[], second: [] as LoggedEvent[] };
      await first.subscribe({ group: 'shared', handle: async (batch) => void seen.first.push(...batch) });
      // Resolves once the group has rebalanced and both members hold their partitions.
      await second.subscribe({ group: 'shared', handle: async (batch) => void seen.second.push(...batch) });

      const events = Array.from({ length: 200 }, (_, i) => suppression(`acct-${i % 40}`, i));
      await first.append(events);
      await waitUntil(() => seen.first.length + seen.second.length >= events.length);
      await sleep(500);

      const partitionsOf = (logged: LoggedEvent[]): Set<number> =>
        new Set(logged.map((e) => e.position.partition));
      const mine = partitionsOf(seen.first);
      const theirs = partitionsOf(seen.second);
      expect(mine.size).toBeGreaterThan(0);
      expect(theirs.size).toBeGreaterThan(0);
      expect([...mine].filter((p) => theirs.has(p))).toEqual([]);
      const ids = [...seen.first, ...seen.second].map((e) => e.event.id);
      expect(ids).toHaveLength(events.length);
      expect(new Set(ids)).toEqual(new Set(events.map((e) => e.id)));
    } finally {
      await Promise.all([first.close(), second.close()]);
      await ns.dispose();
    }
  });

  it('writes the records analytics consumers read: account key, JSON envelope, event-type header, occurredAt', async () => {
    const ns = kafkaNamespace();
    const log = await ns.open();
    const client = new Kafka({
      clientId: 'event-log-test-raw',
      brokers: TEST_KAFKA_BROKERS,
      logLevel: logLevel.NOTHING,
    });
    // Under the namespace's group prefix, so dispose() deletes this group too.
    // A short fetch wait, or disconnect() waits out kafkajs's default 5 s fetch.
    const consumer = client.consumer({ groupId: `${ns.topic}.raw-reader`, maxWaitTimeInMs: 100 });
    try {
      const occurredAt = '2026-11-01T08:30:00.000Z';
      const event = createEvent('SuppressionAdded', {
        accountId: 'acct-raw',
        occurredAt,
        data: { address: 'a@example.test', list: 'unsubscribe', source: 'admin', reason: 'asked' },
      });
      const denied = createEvent('RelayDenied', {
        accountId: null,
        data: {
          reason: 'not-authenticated',
          clientIp: '192.0.2.7',
          mailFrom: 'x@example.test',
          recipients: [],
        },
      });
      await log.append([event, denied]);
      // Read with a plain kafkajs consumer, as an analytics user would.
      const records: { key: string; value: unknown; type: string; timestamp: string }[] = [];
      await consumer.connect();
      await consumer.subscribe({ topics: [ns.topic], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          records.push({
            key: message.key?.toString() ?? '',
            value: JSON.parse(message.value?.toString() ?? 'null'),
            type: message.headers?.['event-type']?.toString() ?? '',
            timestamp: message.timestamp,
          });
        },
      });
      await waitUntil(() => records.length >= 2);
      const byKey = new Map(records.map((r) => [r.key, r]));
      expect(byKey.get('acct-raw')).toEqual({
        key: 'acct-raw',
        value: event,
        type: 'SuppressionAdded',
        timestamp: String(Date.parse(occurredAt)),
      });
      expect(byKey.get('ip:192.0.2.7')?.value).toEqual(denied);
      expect(byKey.get('ip:192.0.2.7')?.type).toBe('RelayDenied');
    } finally {
      await consumer.disconnect();
      await log.close();
      await ns.dispose();
    }
  });

  it('coalesces concurrent single appends and keeps each account in call order', async () => {
    const ns = kafkaNamespace();
    const log = await ns.open();
    try {
      const events = Array.from({ length: 2_000 }, (_, i) => suppression(`acct-${i % 25}`, i));
      // All calls start in one turn, as many SMTP sessions would; each resolves only once acknowledged.
      await Promise.all(events.map((e) => log.append([e])));
      const got: LoggedEvent[] = [];
      await log.subscribe({
        group: 'coalesce',
        maxBatchSize: 100,
        handle: async (batch) => void got.push(...batch),
      });
      await waitUntil(() => got.length >= events.length);
      for (let account = 0; account < 25; account++) {
        const want = events.filter((e) => e.accountId === `acct-${account}`).map((e) => e.id);
        expect(got.filter((e) => e.event.accountId === `acct-${account}`).map((e) => e.event.id)).toEqual(
          want,
        );
      }
    } finally {
      await log.close();
      await ns.dispose();
    }
  });
});
