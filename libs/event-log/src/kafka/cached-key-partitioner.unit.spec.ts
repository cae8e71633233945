import { randomUUID } from 'node:crypto';
import { Partitioners, type PartitionerArgs, type PartitionMetadata } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { CachedKeyPartitioner } from './cached-key-partitioner.js';

const metadata = (count: number): PartitionMetadata[] =>
  Array.from({ length: count }, (_, partitionId) => ({
    partitionId,
    leader: 1,
    replicas: [1],
    isr: [1],
    partitionErrorCode: 0,
    offlineReplicas: [],
  }));

const args = (key: string, count: number, partition?: number): PartitionerArgs => ({
  topic: 'relay.events',
  partitionMetadata: metadata(count),
  message: { key, value: '{}', ...(partition === undefined ? {} : { partition }) },
});

describe('CachedKeyPartitioner', () => {
  it('puts every key where Java’s murmur2 partitioner does, asked once or again', () => {
    const cached = CachedKeyPartitioner();
    const reference = Partitioners.DefaultPartitioner();
    const keys = [...Array.from({ length: 300 }, () => randomUUID()), 'ip:203.0.113.9', 'anonymous'];
    for (const count of [1, 6, 7, 32]) {
      for (const key of [...keys, ...keys]) {
        expect(cached(args(key, count))).toBe(reference(args(key, count)));
      }
    }
  });

  it('keeps one key apart per partition count, so a grown topic is not answered from the old count', () => {
    const cached = CachedKeyPartitioner();
    const reference = Partitioners.DefaultPartitioner();
    const key = Array.from({ length: 100 }, () => randomUUID()).find(
      (k) => reference(args(k, 6)) !== reference(args(k, 12)),
    )!;
    expect(cached(args(key, 6))).toBe(reference(args(key, 6)));
    expect(cached(args(key, 12))).toBe(reference(args(key, 12)));
  });

  it('takes a partition the record names', () => {
    expect(CachedKeyPartitioner()(args(randomUUID(), 6, 4))).toBe(4);
  });
});
