import type { DataSource, EntityManager } from 'typeorm';
import { prepared } from '../prepared-statements.js';
import type { ProjectedEvent, Projection, ProjectionLog, ProjectionLogger } from './projection.js';

export interface ProjectionRunnerOptions {
  /** Any Projection<T>: its apply is only ever handed events of its eventTypes. */
  readonly projection: Projection;
  readonly log: ProjectionLog;
  readonly dataSource: DataSource;
  readonly logger?: ProjectionLogger;
  /** Largest batch per transaction (the log's default when unset). */
  readonly maxBatchSize?: number;
  /** How often an idle runner looks for a rebuild made elsewhere (default 5 000 ms). */
  readonly generationCheckMs?: number;
}

/**
 * The consumer group of a projection: `projection-<name>`, and after the nth rebuild
 * `projection-<name>-g<n>`. A new group has no committed position in the log, so it is delivered
 * the log from its start; that is what makes a rebuild replay everything.
 */
export function consumerGroupOf(name: string, generation: number): string {
  return generation === 0 ? `projection-${name}` : `projection-${name}-g${generation}`;
}

/**
 * The start of a batch's transaction, in one round trip: shares the generation row (a rebuild,
 * which updates it, waits for batches in flight, and they for it), then, only if the generation
 * is still `$3`, creates the rows of the batch's partitions `$2` if need be and locks them in
 * partition order; an existing row keeps its offset. The positions read the generation, so its
 * lock is always taken first, as a rebuild takes them.
 */
const BEGIN_BATCH_SQL = prepared(`
  WITH current AS (
    SELECT generation FROM projection_generations WHERE projection = $1 FOR SHARE
  ), locked AS (
    INSERT INTO projection_positions AS p (projection, partition, log_offset)
    SELECT $1, partition, '' FROM current, unnest($2::int[]) AS partition
    WHERE current.generation = $3
    ORDER BY partition
    ON CONFLICT (projection, partition) DO UPDATE SET log_offset = p.log_offset
    RETURNING partition, log_offset
  )
  SELECT (SELECT generation FROM current) AS generation,
    (SELECT json_object_agg(partition, log_offset) FROM locked) AS offsets`);

const STORE_POSITION_SQL = prepared(`
  UPDATE projection_positions SET log_offset = $3, updated_at = now()
  WHERE projection = $1 AND partition = $2`);

async function ensureGeneration(dataSource: DataSource, name: string): Promise<number> {
  await dataSource.query(
    `INSERT INTO projection_generations (projection) VALUES ($1) ON CONFLICT (projection) DO NOTHING`,
    [name],
  );
  const rows: { generation: number }[] = await dataSource.query(
    `SELECT generation FROM projection_generations WHERE projection = $1`,
    [name],
  );
  return rows[0]?.generation ?? 0;
}

/**
 * Empties a projection's read model and forgets its positions, in one transaction, and moves it to
 * a new generation: every runner of the projection (in any process) then leaves its consumer group
 * for a new one, which the log delivers from its start. Until the replay has caught up, the read
 * model shows only what it has replayed so far. Returns the new generation.
 */
export async function rebuildProjection(dataSource: DataSource, projection: Projection): Promise<number> {
  return dataSource.transaction(async (manager) => {
    const rows: { generation: number }[] = await manager.query(
      `INSERT INTO projection_generations AS g (projection, generation, rebuilt_at)
       VALUES ($1, 1, now())
       ON CONFLICT (projection) DO UPDATE SET generation = g.generation + 1, rebuilt_at = now()
       RETURNING generation`,
      [projection.name],
    );
    await manager.query(`DELETE FROM projection_positions WHERE projection = $1`, [projection.name]);
    await projection.reset(manager);
    return rows[0]!.generation;
  });
}

interface Consuming {
  readonly generation: number;
  readonly subscription: { stop(): Promise<void> };
}

type BatchOutcome =
  | { readonly kind: 'applied'; readonly applied: number; readonly skipped: number }
  | { readonly kind: 'rebuilt'; readonly generation: number }
  | { readonly kind: 'no-generation' };

function byPartition(batch: readonly ProjectedEvent[]): Map<number, ProjectedEvent[]> {
  const partitions = new Map<number, ProjectedEvent[]>();
  for (const logged of batch) {
    const events = partitions.get(logged.position.partition);
    if (events) events.push(logged);
    else partitions.set(logged.position.partition, [logged]);
  }
  return partitions;
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Keeps one projection up to date from the event log. Each batch the log hands over is applied in
 * ONE transaction that first locks the stored position of the batch's partition, skips every event
 * at or below it (a redelivery), applies the rest (applyBatch when the projection has it, else
 * apply per event), stores the new position and commits; only then does the batch's handle()
 * resolve and the log commit its own position. The read model thus changes exactly once per
 * event, whatever the log redelivers, and two runners of the same projection (a consumer-group
 * rebalance on Kafka) serialise on the position row.
 */
export class ProjectionRunner {
  private readonly projection: Projection;
  private readonly types: ReadonlySet<string>;
  private readonly logger: ProjectionLogger;
  private consuming: Consuming | undefined;
  private switching: Promise<void> | undefined;
  private watcher: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: ProjectionRunnerOptions) {
    this.projection = options.projection;
    this.types = new Set<string>(options.projection.eventTypes);
    this.logger = options.logger ?? console;
  }

  /** The consumer group this runner reads with right now (undefined before start). */
  get group(): string | undefined {
    return this.consuming && consumerGroupOf(this.projection.name, this.consuming.generation);
  }

  /** Joins the projection's current consumer group; resolves once the log has taken the subscription. */
  async start(): Promise<void> {
    if (this.consuming || this.stopped)
      throw new Error(`projection ${this.projection.name}: already started`);
    const generation = await ensureGeneration(this.options.dataSource, this.projection.name);
    this.consuming = { generation, subscription: await this.subscribe(generation) };
    this.watcher = setInterval(() => this.checkGeneration(), this.options.generationCheckMs ?? 5_000);
    this.watcher.unref();
  }

  /** Lets the batch in hand commit, then leaves the consumer group. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.watcher);
    await this.switching;
    const consuming = this.consuming;
    this.consuming = undefined;
    await consuming?.subscription.stop();
  }

  private async subscribe(generation: number): Promise<{ stop(): Promise<void> }> {
    const group = consumerGroupOf(this.projection.name, generation);
    const subscription = await this.options.log.subscribe({
      group,
      types: this.projection.eventTypes,
      handle: (batch) => this.handle(batch, generation),
      ...(this.options.maxBatchSize === undefined ? {} : { maxBatchSize: this.options.maxBatchSize }),
    });
    this.logger.info('projection subscribed', { projection: this.projection.name, group, generation });
    return subscription;
  }

  private async handle(batch: readonly ProjectedEvent[], generation: number): Promise<void> {
    // A batch with nothing to apply needs no transaction: skipping it again on redelivery is as good.
    if (!batch.some((logged) => this.types.has(logged.event.type))) return;
    const outcome = await this.options.dataSource.transaction((manager) =>
      this.applyBatch(manager, batch, generation),
    );
    if (outcome.kind === 'no-generation') {
      // Someone deleted the row: recreate it (generation 0) and have the batch delivered again,
      // rather than guess whether this group is still the current one.
      this.requestSwitch();
      throw new Error(`projection ${this.projection.name}: its projection_generations row is missing`);
    }
    if (outcome.kind === 'rebuilt') {
      // The old group is abandoned: letting the log commit this batch there loses nothing.
      this.logger.info('projection rebuilt, moving to the new consumer group', {
        projection: this.projection.name,
        from: generation,
        to: outcome.generation,
      });
      this.requestSwitch();
      return;
    }
    this.logger.debug?.('projection batch applied', {
      projection: this.projection.name,
      applied: outcome.applied,
      skipped: outcome.skipped,
      last: batch.at(-1)?.position,
    });
  }

  private async applyBatch(
    manager: EntityManager,
    batch: readonly ProjectedEvent[],
    generation: number,
  ): Promise<BatchOutcome> {
    const partitions = byPartition(batch);
    const rows: { generation: number | null; offsets: Record<string, string> | null }[] = await manager.query(
      BEGIN_BATCH_SQL,
      [this.projection.name, [...partitions.keys()], generation],
    );
    const current = rows[0]?.generation ?? undefined;
    if (current === undefined) return { kind: 'no-generation' };
    if (current !== generation) return { kind: 'rebuilt', generation: current };
    const offsets = rows[0]?.offsets ?? {};
    let applied = 0;
    let skipped = 0;
    for (const [partition, events] of partitions) {
      // '' sorts below every offset: nothing of this partition applied yet.
      const from = offsets[String(partition)] ?? '';
      const fresh = events.filter((logged) => logged.position.offset > from);
      skipped += events.length - fresh.length;
      const last = fresh.at(-1)?.position;
      if (!last) continue;
      const relevant = fresh.map((logged) => logged.event).filter((event) => this.types.has(event.type));
      applied += relevant.length;
      if (this.projection.applyBatch) {
        if (relevant.length > 0) await this.projection.applyBatch(relevant, manager);
      } else {
        for (const event of relevant) await this.projection.apply(event, manager);
      }
      await manager.query(STORE_POSITION_SQL, [this.projection.name, partition, last.offset]);
    }
    return { kind: 'applied', applied, skipped };
  }

  private checkGeneration(): void {
    if (this.switching || this.stopped) return;
    this.options.dataSource
      .query(`SELECT generation FROM projection_generations WHERE projection = $1`, [this.projection.name])
      .then((rows: { generation: number }[]) => {
        const generation = rows[0]?.generation;
        if (generation !== undefined && generation !== this.consuming?.generation) this.requestSwitch();
      })
      .catch((error: unknown) =>
        this.logger.warn('projection generation check failed', {
          projection: this.projection.name,
          error: messageOf(error),
        }),
      );
  }

  /** Never awaited by handle(): the old subscription's stop() waits for the batch in hand. */
  private requestSwitch(): void {
    this.switching ??= this.switchGeneration()
      .catch((error: unknown) =>
        // The watcher tries again: consuming is left empty, so the next check differs.
        this.logger.error('projection could not move to its new consumer group', {
          projection: this.projection.name,
          error: messageOf(error),
        }),
      )
      .finally(() => {
        this.switching = undefined;
      });
  }

  private async switchGeneration(): Promise<void> {
    if (this.stopped) return;
    const generation = await ensureGeneration(this.options.dataSource, this.projection.name);
    if (generation === this.consuming?.generation) return;
    const old = this.consuming;
    this.consuming = undefined;
    await old?.subscription.stop();
    if (this.stopped) return;
    this.consuming = { generation, subscription: await this.subscribe(generation) };
  }
}
