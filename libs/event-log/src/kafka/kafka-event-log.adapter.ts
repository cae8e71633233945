import { randomUUID } from 'node:crypto';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import {
  Kafka,
  logLevel,
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type KafkaMessage,
  type LogEntry,
  type Message,
  type Producer,
} from 'kafkajs';
import type { RelayEvent } from '@relay/domain';
import { CachedKeyPartitioner } from './cached-key-partitioner.js';
import type {
  EventLog,
  LoggedEvent,
  LogPosition,
  ReadRange,
  SubscribeOptions,
  Subscription,
} from '../event-log.port.js';

/** The adapter's own log lines and kafkajs's warnings and errors go here. Nest's Logger fits. */
export interface KafkaEventLogLogger {
  warn(message: string, context?: Record<string, unknown>): void;
  error(message: string, context?: Record<string, unknown>): void;
}

export interface KafkaEventLogOptions {
  readonly brokers: readonly string[];
  /** The log's topic [relay.events]. */
  readonly topic?: string;
  /** Partitions when `connect` creates the topic [6]; an existing topic keeps its own count. */
  readonly partitions?: number;
  /** Replication factor when `connect` creates the topic [the broker's default.replication.factor]. */
  readonly replicationFactor?: number;
  /** retention.ms when `connect` creates the topic [7 days]; -1 keeps events forever. */
  readonly retentionMs?: number;
  readonly clientId?: string;
  /** Longest an append waits for the broker's acknowledgement before it fails [15 s]. */
  readonly appendTimeoutMs?: number;
  /** Put before every consumer group id, so deployments sharing a cluster keep their groups apart [none]. */
  readonly groupIdPrefix?: string;
  readonly logger?: KafkaEventLogLogger;
}

const DEFAULT_TOPIC = 'relay.events';
const DEFAULT_PARTITIONS = 6;
const SEVEN_DAYS_MS = 7 * 24 * 60 * 60 * 1000;
const DEFAULT_MAX_BATCH_SIZE = 500;
/** A subscription commits its offsets at most this often, and when it stops. */
const COMMIT_INTERVAL_MS = 200;
/**
 * With the broker gone, kafkajs's nested retries (connect inside send) take a minute or more to
 * give up. An SMTP session waiting for its 250 should rather hear 451 and come back later.
 */
const DEFAULT_APPEND_TIMEOUT_MS = 15_000;

/**
 * kafkajs puts all of one send's messages for a partition into one record batch, and the broker
 * refuses a batch over message.max.bytes (1 MiB by default). Capping the whole send keeps every
 * partition's batch under it, however the keys are spread.
 */
const MAX_SEND_BYTES = 900 * 1024;
/** Rough per-record overhead on the wire (offsets, timestamp, header name), for the send cap. */
const RECORD_OVERHEAD_BYTES = 64;

/**
 * A fetch is a long poll: the broker answers as soon as an append reaches a fetched partition, so
 * this bounds only idle polling, not latency (measured: p50 ~2 ms from append to handle at 20 and
 * at 1 000 events/s with 500 ms). At 20 ms, five idle groups cost the broker 50% of a core here;
 * the price of a longer wait is that stop() may wait out one idle fetch.
 */
const FETCH_MAX_WAIT_MS = 250;
/**
 * Under load every append answers every group's waiting fetch at once, so each group fetched a
 * few events at a time: with the relay's nine groups in one process, ~670 fetches a second (two
 * per message) in a burst of ~300 messages/s, kafkajs taking a third of the worker's CPU. At a
 * steady 200 messages/s the broker took a quarter of a core and accept-to-delivered p99 passed
 * 10 s. So a group fetches again at most this many ms times the number of subscriptions in the
 * process after its previous fetch returned: together they fetch at most ~200 times a second,
 * however many there are. An idle group is not slowed (its fetch waits at the broker,
 * FETCH_MAX_WAIT_MS); a busy one hands its events on at most that much later.
 * Measured at 200 messages/s (npm run bench, nine groups): accept-to-delivered p99 10.5 s with no
 * spacing, 505 ms with a flat 10 ms, 210 ms with this (45 ms per group).
 */
const FETCH_SPACING_PER_SUBSCRIPTION_MS = 5;
const SESSION_TIMEOUT_MS = 10_000;
/** Also how fast a running member notices that another one joined: the rebalance takes about this long. */
const HEARTBEAT_INTERVAL_MS = 1_000;
/** Node runs handlers on one thread; more concurrent partitions only help I/O-bound handlers. */
const MAX_CONCURRENT_PARTITIONS = 16;
const REDELIVERY_PAUSE_MS = 250;
const MAX_REDELIVERY_PAUSE_MS = 5_000;
const HEALTH_TIMEOUT_MS = 2_000;
/** A replay stops fetching while this many events wait for the reader. */
const REPLAY_BUFFER_EVENTS = 5_000;

interface SendPart {
  readonly messages: Message[];
  bytes: number;
}

interface PendingSend extends SendPart {
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * The event log on Kafka: one topic, key = account, JSON envelope as the value, header
 * `event-type`, record timestamp = occurredAt (replay by time seeks with the broker's time index).
 *
 * Appends from concurrent callers are group-committed: calls that arrive while a send is in flight
 * (or in the same turn of the event loop) go out together in the next send, one send at a time, so
 * a thousand SMTP sessions cost a handful of produce requests and per-key order is the call order.
 */
export class KafkaEventLog implements EventLog {
  private producer: Promise<Producer> | undefined;
  private readonly retiredProducers = new Set<Promise<void>>();
  private readonly queue: PendingSend[] = [];
  private flushing: Promise<void> | undefined;
  private readonly subscriptions = new Set<KafkaSubscription>();
  private readonly replays = new Set<() => Promise<void>>();
  private health: Promise<boolean> | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly kafka: Kafka,
    private readonly admin: Admin,
    private readonly topic: string,
    private readonly partitionCount: number,
    private readonly groupIdPrefix: string,
    private readonly appendTimeoutMs: number,
    private readonly logger: KafkaEventLogLogger,
  ) {}

  /** Creates the topic if it is missing, then connects the admin client and the producer. */
  static async connect(options: KafkaEventLogOptions): Promise<KafkaEventLog> {
    const logger = options.logger ?? consoleLogger;
    const topic = options.topic ?? DEFAULT_TOPIC;
    const kafka = new Kafka({
      clientId: options.clientId ?? 'relay',
      brokers: [...options.brokers],
      connectionTimeout: 3_000,
      retry: { initialRetryTime: 100, retries: 5 },
      logLevel: logLevel.WARN,
      logCreator: kafkajsLogCreator(logger),
    });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const partitionCount = await ensureTopic(admin, topic, options, logger);
      const log = new KafkaEventLog(
        kafka,
        admin,
        topic,
        partitionCount,
        options.groupIdPrefix ?? '',
        options.appendTimeoutMs ?? DEFAULT_APPEND_TIMEOUT_MS,
        logger,
      );
      await log.connectedProducer();
      return log;
    } catch (error) {
      await admin.disconnect().catch(() => undefined);
      throw error;
    }
  }

  async append(events: readonly RelayEvent[]): Promise<void> {
    if (this.closing) throw new Error('the Kafka event log is closed');
    if (events.length === 0) return;
    // Everything up to the enqueue runs synchronously, so the queue holds appends in call order.
    const parts = splitBySendLimit(events.map(toRecord));
    // An append larger than one send goes out in several; a failure rejects the whole append and
    // the caller's retry may duplicate the parts that made it (consumers de-duplicate on id).
    await Promise.all(parts.map((part) => this.enqueue(part)));
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closing) throw new Error('the Kafka event log is closed');
    const subscription = new KafkaSubscription(
      this.kafka,
      this.topic,
      this.groupIdPrefix + options.group,
      options,
      Math.min(Math.max(this.partitionCount, 1), MAX_CONCURRENT_PARTITIONS),
      this.logger,
      () => FETCH_SPACING_PER_SUBSCRIPTION_MS * this.subscriptions.size,
      () => this.subscriptions.delete(subscription),
    );
    this.subscriptions.add(subscription);
    try {
      await subscription.start();
    } catch (error) {
      await subscription.stop();
      throw error;
    }
    return subscription;
  }

  async *readRange(range: ReadRange): AsyncIterable<LoggedEvent> {
    if (this.closing) throw new Error('the Kafka event log is closed');
    const from = range.from.getTime();
    const to = range.to.getTime();
    if (!(from < to)) return;

    // The high watermarks now are the end of the replay: events appended while it runs are not part of it.
    const [starts, ends] = await Promise.all([
      this.admin.fetchTopicOffsetsByTimestamp(this.topic, from),
      this.admin.fetchTopicOffsets(this.topic),
    ]);
    const remaining = new Map<number, { next: bigint; end: bigint }>();
    for (const { partition, offset } of starts) {
      const end = ends.find((e) => e.partition === partition);
      if (end && BigInt(offset) < BigInt(end.offset)) {
        remaining.set(partition, { next: BigInt(offset), end: BigInt(end.offset) });
      }
    }
    if (remaining.size === 0) return;

    const matches = (event: RelayEvent): boolean => {
      const at = Date.parse(event.occurredAt);
      return (
        at >= from &&
        at < to &&
        (range.accountId === undefined || event.accountId === range.accountId) &&
        (range.types === undefined || range.types.includes(event.type))
      );
    };

    // kafkajs reads only as a group member. A group of its own that never commits leaves the
    // real groups untouched; it is deleted afterwards.
    const groupId = `${this.groupIdPrefix}relay-replay-${randomUUID()}`;
    const consumer = this.kafka.consumer({
      groupId,
      maxWaitTimeInMs: 100,
      sessionTimeout: SESSION_TIMEOUT_MS,
      heartbeatInterval: HEARTBEAT_INTERVAL_MS,
      allowAutoTopicCreation: false,
      retry: { retries: 5, restartOnFailure: async () => false },
    });
    const buffer = new ReplayBuffer();
    const stopReplay = async (): Promise<void> => {
      buffer.close();
      await consumer.disconnect().catch(() => undefined);
    };
    this.replays.add(stopReplay);
    consumer.on(consumer.events.CRASH, ({ payload }) => buffer.fail(payload.error));

    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [this.topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: async (payload) => {
          const { batch } = payload;
          const state = remaining.get(batch.partition);
          if (!state) {
            payload.pause();
            return;
          }
          const found: LoggedEvent[] = [];
          for (const message of batch.messages) {
            const offset = BigInt(message.offset);
            // Before the seek lands the first fetch may start at the log's beginning.
            if (offset < state.next) continue;
            if (offset >= state.end) break;
            const event = decodeEvent(message, batch.partition, this.topic, this.logger);
            if (event && matches(event))
              found.push({ event, position: positionOf(batch.partition, message) });
          }
          const last = BigInt(batch.lastOffset()) + 1n;
          state.next = last > state.end ? state.end : last > state.next ? last : state.next;
          if (state.next >= state.end) {
            remaining.delete(batch.partition);
            payload.pause();
          }
          await buffer.push(found, () => payload.heartbeat());
          if (remaining.size === 0) buffer.end();
        },
      });
      // Partitions with nothing in the range are never read; the others start at the range.
      const idle = ends.map((e) => e.partition).filter((p) => !remaining.has(p));
      if (idle.length > 0) consumer.pause([{ topic: this.topic, partitions: idle }]);
      for (const [partition, { next }] of remaining) {
        consumer.seek({ topic: this.topic, partition, offset: next.toString() });
      }
      for (;;) {
        const events = await buffer.take();
        if (events === undefined) return;
        yield* events;
      }
    } finally {
      await stopReplay();
      this.replays.delete(stopReplay);
      await this.admin.deleteGroups([groupId]).catch(() => undefined);
    }
  }

  isHealthy(): Promise<boolean> {
    // Probes from a busy /health endpoint share one round trip.
    this.health ??= this.probe().finally(() => {
      this.health = undefined;
    });
    return this.health;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.subscriptions].map((s) => s.stop()));
      await Promise.allSettled([...this.replays].map((stop) => stop()));
      // Appends accepted before close still get their answer.
      await this.flushing;
      const producer = await this.producer?.catch(() => undefined);
      await producer?.disconnect().catch(() => undefined);
      await Promise.allSettled(this.retiredProducers);
      await this.admin.disconnect().catch(() => undefined);
    })();
    return this.closing;
  }

  private enqueue(part: SendPart): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ...part, resolve, reject });
      // Waiting one turn of the event loop lets the appends of every session that is ready now
      // share the first send, instead of the first caller going out alone.
      this.flushing ??= nextTurn().then(() => this.flush());
    });
  }

  private async flush(): Promise<void> {
    for (;;) {
      const sends = this.takeSends();
      if (sends.length === 0) {
        // Cleared in the same synchronous step that saw the queue empty, so no append is stranded.
        this.flushing = undefined;
        return;
      }
      const messages = sends.flatMap((s) => s.messages);
      try {
        await withDeadline(this.appendTimeoutMs, async () => {
          const producer = await this.connectedProducer();
          await producer.send({ topic: this.topic, acks: -1, messages });
        });
        for (const s of sends) s.resolve();
      } catch (error) {
        this.logger.error('append failed; starting a new producer session', {
          topic: this.topic,
          events: messages.length,
          error: describeError(error),
        });
        for (const s of sends) s.reject(error);
        this.discardProducer();
      }
    }
  }

  private takeSends(): PendingSend[] {
    let bytes = 0;
    let count = 0;
    for (const pending of this.queue) {
      if (count > 0 && bytes + pending.bytes > MAX_SEND_BYTES) break;
      bytes += pending.bytes;
      count++;
    }
    return this.queue.splice(0, count);
  }

  private connectedProducer(): Promise<Producer> {
    this.producer ??= (async () => {
      const producer = this.kafka.producer({
        idempotent: true,
        // kafkajs numbers an idempotent producer's batches per partition and only supports one
        // request in flight per broker for it; group commit keeps one send in flight anyway.
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        // Java's murmur2 partitioner: Java and other clients place an account's key on the same partition.
        createPartitioner: CachedKeyPartitioner,
        // Bounded, unlike kafkajs's default for idempotence (retry forever); appendTimeoutMs bounds
        // the whole send anyway. After a failure the session is replaced, see discardProducer.
        retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2_000 },
      });
      await producer.connect();
      return producer;
    })();
    return this.producer;
  }

  /**
   * A send that failed (or timed out) may still have been written. Its sequence numbers would be
   * reused by the next send of the same session, which the broker then drops as a duplicate; a new
   * session (new producer id) cannot collide. The failed append is retried by its caller, so the
   * events it wrote anyway appear twice (consumers de-duplicate on id).
   */
  private discardProducer(): void {
    const retired = this.producer;
    this.producer = undefined;
    if (!retired) return;
    // Not awaited: a producer that is still connecting to a dead broker must not hold up the
    // appends waiting behind it. close() waits for these.
    const disconnected = retired
      .then((producer) => producer.disconnect())
      .catch(() => undefined)
      .finally(() => this.retiredProducers.delete(disconnected));
    this.retiredProducers.add(disconnected);
  }

  private async probe(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), HEALTH_TIMEOUT_MS);
    });
    const check = this.admin
      .fetchTopicMetadata({ topics: [this.topic] })
      .then(({ topics }) => {
        const partitions = topics[0]?.partitions ?? [];
        return partitions.length > 0 && partitions.every((p) => p.leader >= 0);
      })
      .catch(() => false);
    try {
      return await Promise.race([check, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** One consumer group member; `handle` sees each partition's events in order, chunk by chunk. */
class KafkaSubscription implements Subscription {
  private readonly consumer: Consumer;
  private readonly maxBatchSize: number;
  private readonly types: ReadonlySet<string> | undefined;
  private readonly failures = new Map<number, number>();
  private readonly resumeTimers = new Set<NodeJS.Timeout>();
  /** Next offset per partition, handled but not committed yet. */
  private readonly handled = new Map<number, string>();
  private lastCommit = Date.now();
  private commitTimer: NodeJS.Timeout | undefined;
  /** Set first thing in stop(): a chunk finishing after that commits at once. */
  private closing = false;
  private stopping: Promise<void> | undefined;

  constructor(
    kafka: Kafka,
    private readonly topic: string,
    private readonly groupId: string,
    private readonly options: SubscribeOptions,
    private readonly concurrency: number,
    private readonly logger: KafkaEventLogLogger,
    /** How long after a fetch returned the next may go out (see FETCH_SPACING_PER_SUBSCRIPTION_MS). */
    private readonly fetchSpacingMs: () => number,
    private readonly onStopped: () => void,
  ) {
    this.maxBatchSize = Math.max(1, options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE);
    this.types = options.types ? new Set(options.types) : undefined;
    this.consumer = kafka.consumer({
      groupId,
      maxWaitTimeInMs: FETCH_MAX_WAIT_MS,
      minBytes: 1,
      sessionTimeout: SESSION_TIMEOUT_MS,
      heartbeatInterval: HEARTBEAT_INTERVAL_MS,
      allowAutoTopicCreation: false,
    });
  }

  /** Resolves once this member has joined the group and holds its partitions. */
  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.topic], fromBeginning: true });
    await this.consumer.run({
      // Offsets are committed explicitly, chunk by chunk, after `handle` resolved.
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.concurrency,
      eachBatch: (payload) => this.eachBatch(payload),
    });
  }

  stop(): Promise<void> {
    this.closing = true;
    this.stopping ??= (async () => {
      for (const timer of this.resumeTimers) clearTimeout(timer);
      this.resumeTimers.clear();
      clearTimeout(this.commitTimer);
      await this.commitHandled();
      // kafkajs stops fetching, waits for the batch in hand (eachBatch ends after the chunk it is
      // handling commits, see isRunning there), leaves the group and closes its connections.
      await this.consumer.disconnect().catch((error: unknown) => {
        this.logger.warn('consumer did not disconnect cleanly', {
          group: this.groupId,
          error: describeError(error),
        });
      });
      this.onStopped();
    })();
    return this.stopping;
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const fetched = performance.now();
    await this.handleBatch(payload);
    // kafkajs fetches again once every batch of this fetch has returned: waiting here spaces
    // this group's fetches.
    const wait = fetched + this.fetchSpacingMs() - performance.now();
    if (wait > 0 && !this.closing && payload.isRunning()) await sleep(wait);
  }

  private async handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const { partition, messages } = batch;
    for (let start = 0; start < messages.length; start += this.maxBatchSize) {
      if (!payload.isRunning() || payload.isStale()) return;
      const chunk = messages.slice(start, start + this.maxBatchSize);
      const lastOffset = chunk[chunk.length - 1]?.offset;
      if (lastOffset === undefined) return;
      const events: LoggedEvent[] = [];
      for (const message of chunk) {
        // The event-type header says what the record is, so a type this group does not take is
        // skipped without parsing its JSON.
        if (this.types && !this.types.has(message.headers?.['event-type']?.toString() ?? '')) continue;
        const event = decodeEvent(message, partition, this.topic, this.logger);
        if (event) events.push({ event, position: positionOf(partition, message) });
      }
      if (events.length > 0) {
        try {
          await whileHeartbeating(
            () => payload.heartbeat(),
            () => this.options.handle(events),
          );
        } catch (error) {
          this.redeliverLater(partition, events[0]?.position.offset, error, () => payload.pause());
          return;
        }
      }
      this.failures.delete(partition);
      payload.resolveOffset(lastOffset);
      // At least once: a position is committed only after `handle` resolved, and at most every
      // COMMIT_INTERVAL_MS (one commit per chunk per group was a large share of the work); what
      // a crash or rebalance leaves uncommitted comes again.
      this.handled.set(partition, (BigInt(lastOffset) + 1n).toString());
      if (this.closing || Date.now() - this.lastCommit >= COMMIT_INTERVAL_MS) {
        // Through the batch's own commit: a consumer already leaving the group (stop) refuses
        // commitOffsets, but still takes the batch's commit before it goes.
        await this.commitHandled((offsets) => payload.commitOffsetsIfNecessary(offsets));
      } else this.commitTimer ??= setTimeout(() => void this.commitHandled(), COMMIT_INTERVAL_MS);
      await payload.heartbeat();
    }
  }

  private async commitHandled(
    commit: (offsets: {
      topics: { topic: string; partitions: { partition: number; offset: string }[] }[];
    }) => Promise<void> = (offsets) =>
      this.consumer.commitOffsets(
        offsets.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, ...p }))),
      ),
  ): Promise<void> {
    clearTimeout(this.commitTimer);
    this.commitTimer = undefined;
    if (this.handled.size === 0) return;
    const partitions = [...this.handled].map(([partition, offset]) => ({ partition, offset }));
    this.handled.clear();
    this.lastCommit = Date.now();
    await commit({ topics: [{ topic: this.topic, partitions }] }).catch((error: unknown) => {
      // A rebalance in progress: the new owner starts from the last commit (at least once).
      this.logger.warn('offset commit failed; the events will come again', {
        group: this.groupId,
        error: describeError(error),
      });
    });
  }

  /**
   * Leaves the failed chunk unresolved and pauses its partition: kafkajs's next fetch of the
   * partition starts at the last resolved offset, i.e. at the failed chunk. Pausing instead of
   * sleeping here keeps the other partitions flowing, since kafkajs fetches again only when every
   * batch of the previous fetch is done.
   */
  private redeliverLater(
    partition: number,
    offset: string | undefined,
    error: unknown,
    pause: () => () => void,
  ): void {
    const failures = (this.failures.get(partition) ?? 0) + 1;
    this.failures.set(partition, failures);
    const delay = Math.min(REDELIVERY_PAUSE_MS * 2 ** (failures - 1), MAX_REDELIVERY_PAUSE_MS);
    this.logger.error('event handler failed; the batch will be delivered again', {
      group: this.groupId,
      partition,
      offset,
      failures,
      retryInMs: delay,
      error: describeError(error),
    });
    const resume = pause();
    const timer = setTimeout(() => {
      this.resumeTimers.delete(timer);
      resume();
    }, delay);
    this.resumeTimers.add(timer);
  }
}

/**
 * Hands a replay's events from the kafkajs callback to the async iterator. The callback waits
 * (heartbeating, so the throw-away group keeps its partitions) while the reader is behind.
 */
class ReplayBuffer {
  private events: LoggedEvent[] = [];
  private finished = false;
  private closed = false;
  private failure: { error: unknown } | undefined;
  private wakeReader: (() => void) | undefined;
  private wakeWriter: (() => void) | undefined;

  async push(events: readonly LoggedEvent[], heartbeat: () => Promise<void>): Promise<void> {
    if (events.length > 0) {
      for (const event of events) this.events.push(event);
      this.wake();
    }
    while (this.events.length >= REPLAY_BUFFER_EVENTS && !this.closed) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.wakeWriter = resolve;
        timer = setTimeout(resolve, HEARTBEAT_INTERVAL_MS);
      });
      clearTimeout(timer);
      await heartbeat().catch(() => undefined);
    }
  }

  end(): void {
    this.finished = true;
    this.wake();
  }

  fail(error: unknown): void {
    this.failure ??= { error };
    this.wake();
  }

  close(): void {
    this.closed = true;
    this.wake();
  }

  /** The next events, or undefined once the replay is complete. */
  async take(): Promise<LoggedEvent[] | undefined> {
    for (;;) {
      if (this.events.length > 0) {
        const events = this.events;
        this.events = [];
        this.wakeWriter?.();
        return events;
      }
      if (this.failure) throw this.failure.error;
      if (this.finished) return undefined;
      if (this.closed) throw new Error('the Kafka event log was closed during a replay');
      await new Promise<void>((resolve) => {
        this.wakeReader = resolve;
      });
    }
  }

  private wake(): void {
    this.wakeReader?.();
    this.wakeWriter?.();
  }
}

async function ensureTopic(
  admin: Admin,
  topic: string,
  options: KafkaEventLogOptions,
  logger: KafkaEventLogLogger,
): Promise<number> {
  const partitions = options.partitions ?? DEFAULT_PARTITIONS;
  const replicationFactor = options.replicationFactor ?? -1;
  const configEntries = [
    { name: 'retention.ms', value: String(options.retentionMs ?? SEVEN_DAYS_MS) },
    // Replay by time needs the record timestamp to be occurredAt, whatever the broker's default.
    { name: 'message.timestamp.type', value: 'CreateTime' },
  ];
  // With acks=all, "durable" means on min.insync.replicas copies; the broker default is 1.
  if (replicationFactor >= 3) configEntries.push({ name: 'min.insync.replicas', value: '2' });
  await admin.createTopics({
    topics: [{ topic, numPartitions: partitions, replicationFactor, configEntries }],
    waitForLeaders: true,
  });
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
  const actual = topics[0]?.partitions.length ?? 0;
  if (actual === 0) throw new Error(`topic ${topic} has no partitions`);
  if (actual !== partitions && options.partitions !== undefined) {
    logger.warn('the topic exists with another partition count; keeping it', {
      topic,
      partitions: actual,
      asked: partitions,
    });
  }
  return actual;
}

/**
 * The partition key is the account, so an account's events keep their order. The only events
 * without an account are RelayDenied for clients no account matched: they are keyed by client
 * IP (`ip:<address>`), so a flood of refused attempts spreads over partitions instead of filling
 * one, and one client's refusals stay in order.
 */
function partitionKey(event: RelayEvent): string {
  if (event.accountId !== null) return event.accountId;
  return event.type === 'RelayDenied' ? `ip:${event.data.clientIp}` : 'anonymous';
}

function toRecord(event: RelayEvent): { message: Message; bytes: number } {
  const timestamp = Date.parse(event.occurredAt);
  if (Number.isNaN(timestamp)) {
    throw new Error(`event ${event.id} (${event.type}) has an invalid occurredAt: ${event.occurredAt}`);
  }
  const key = partitionKey(event);
  // A string, not a Buffer: kafkajs writes strings straight into its request buffer, one copy
  // and one allocation fewer per event (record encoding is where an append spends its CPU).
  const value = JSON.stringify(event);
  return {
    message: { key, value, timestamp: String(timestamp), headers: { 'event-type': event.type } },
    bytes: Buffer.byteLength(value) + Buffer.byteLength(key) + RECORD_OVERHEAD_BYTES,
  };
}

function splitBySendLimit(records: readonly { message: Message; bytes: number }[]): SendPart[] {
  const parts: SendPart[] = [];
  let current: SendPart = { messages: [], bytes: 0 };
  for (const { message, bytes } of records) {
    if (current.messages.length > 0 && current.bytes + bytes > MAX_SEND_BYTES) {
      parts.push(current);
      current = { messages: [], bytes: 0 };
    }
    current.messages.push(message);
    current.bytes += bytes;
  }
  parts.push(current);
  return parts;
}

/** Kafka offsets zero-padded to 20 digits (a signed 64-bit value has at most 19) compare as strings. */
function positionOf(partition: number, message: KafkaMessage): LogPosition {
  return { partition, offset: message.offset.padStart(20, '0') };
}

/**
 * A record that is not an envelope (null, not JSON) is logged and skipped: it can never be
 * handled, and redelivering it forever would stop the partition for every later event. Unknown
 * `type`s are delivered: a newer writer's events must not be skipped by an older reader.
 */
function decodeEvent(
  message: KafkaMessage,
  partition: number,
  topic: string,
  logger: KafkaEventLogLogger,
): RelayEvent | undefined {
  try {
    const parsed: unknown = message.value ? JSON.parse(message.value.toString('utf8')) : undefined;
    if (isEnvelope(parsed)) return parsed as RelayEvent;
  } catch {
    // Falls through to the log line below.
  }
  logger.error('skipping a record that is not an event envelope', {
    topic,
    partition,
    offset: message.offset,
  });
  return undefined;
}

function isEnvelope(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const { id, type, occurredAt } = value as Record<string, unknown>;
  return typeof id === 'string' && typeof type === 'string' && typeof occurredAt === 'string';
}

/** Runs `work`, failing after `ms`; `work` is left to settle on its own (nothing waits for it). */
async function withDeadline(ms: number, work: () => Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no acknowledgement from Kafka within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([work(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Keeps the group membership alive while a handler runs longer than the session timeout. */
async function whileHeartbeating<T>(heartbeat: () => Promise<void>, work: () => Promise<T>): Promise<T> {
  const timer = setInterval(() => {
    // A rebalance reported here is seen again by kafkajs's own heartbeat after the batch.
    heartbeat().catch(() => undefined);
  }, HEARTBEAT_INTERVAL_MS);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/** kafkajs's producer warns about bounded retries at every start; discardProducer is the answer to it. */
const EXPECTED_KAFKAJS_WARNINGS = ['Limiting retries for the idempotent producer'];

function kafkajsLogCreator(logger: KafkaEventLogLogger): () => (entry: LogEntry) => void {
  return () =>
    ({ namespace, level, log }) => {
      const { message, timestamp: _timestamp, ...context } = log;
      if (EXPECTED_KAFKAJS_WARNINGS.some((expected) => message.startsWith(expected))) return;
      const line = `kafkajs ${namespace}: ${message}`;
      if (level === logLevel.ERROR) logger.error(line, context);
      else logger.warn(line, context);
    };
}

const consoleLogger: KafkaEventLogLogger = {
  warn: (message, context) =>
    console.warn(`[kafka-event-log] ${message}`, context ? JSON.stringify(context) : ''),
  error: (message, context) =>
    console.error(`[kafka-event-log] ${message}`, context ? JSON.stringify(context) : ''),
};

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
