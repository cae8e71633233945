import type { DataSource } from 'typeorm';
import { consumerGroupOf } from '@relay/persistence';

/** Where a projection stands: its generation and, per partition, the last log position applied. */
export interface ProjectionStatus {
  readonly name: string;
  readonly generation: number;
  readonly group: string;
  readonly rebuiltAt: string | null;
  readonly positions: readonly { partition: number; offset: string; updatedAt: string }[];
}

interface StatusRow {
  generation: number | null;
  rebuilt_at: string | null;
  positions: { partition: number; offset: string; updatedAt: string }[];
}

const UTC_MS = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

/** One statement, so one snapshot: never a new generation beside the old one's positions. */
const STATUS_SQL = `
  SELECT g.generation, to_char(g.rebuilt_at AT TIME ZONE 'UTC', ${UTC_MS}) AS rebuilt_at,
         COALESCE((
           SELECT json_agg(json_build_object(
                    'partition', p.partition,
                    'offset', p.log_offset,
                    'updatedAt', to_char(p.updated_at AT TIME ZONE 'UTC', ${UTC_MS}))
                  ORDER BY p.partition)
           FROM projection_positions p WHERE p.projection = $1), '[]') AS positions
  FROM (SELECT $1::text AS projection) n
  LEFT JOIN projection_generations g USING (projection)`;

/**
 * What projection_generations and projection_positions hold for `name`. A projection no runner
 * has started yet shows generation 0 and no positions.
 */
export async function projectionStatus(dataSource: DataSource, name: string): Promise<ProjectionStatus> {
  const rows: StatusRow[] = await dataSource.query(STATUS_SQL, [name]);
  const row = rows[0];
  const generation = row?.generation ?? 0;
  return {
    name,
    generation,
    group: consumerGroupOf(name, generation),
    rebuiltAt: row?.rebuilt_at ?? null,
    positions: row?.positions ?? [],
  };
}
