import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * `npm run bench:ingress` is issue 3's point 10: it has to keep printing, for each event-log
 * adapter, what the issue asks for. This runs the built bench for one second per adapter and checks
 * the shape and sanity of what it prints, never the figures themselves (tests do not judge speed).
 * The bench is compiled by `tsc -b`, which `npm test` runs before vitest.
 */

const BENCH = fileURLToPath(new URL('../dist/bench/ingress.bench.js', import.meta.url));

interface Printed {
  readonly adapter: string;
  readonly status: string;
  readonly acceptedPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly peakRssMb: number;
  readonly relayCpuMsPerMessage: number;
  readonly details: {
    readonly sessions: number;
    readonly messageOctets: number;
    readonly measured: { readonly attempted: number; readonly accepted: number };
    readonly large: { readonly accepted: number; readonly messageOctets: number };
  };
}

describe('npm run bench:ingress', () => {
  // Its own limit: two relay starts, warm-ups and 4 × 30 MB each can pass the default 60 s on a
  // busy machine. The signal stops the bench (and so its relays) when the test is given up.
  it(
    'prints msg/s, DATA-end-to-250 p50/p99 and peak RSS with 4 × 30 MB for both adapters',
    { timeout: 300_000 },
    async ({ signal }) => {
      const { stdout } = await promisify(execFile)(process.execPath, [BENCH], {
        env: { ...process.env, BENCH_SECONDS: '1', BENCH_MAX_MESSAGES: '400' },
        signal,
        maxBuffer: 16 * 1024 * 1024,
      });
      const printed = stdout
        .split('\n')
        .filter((line) => line.startsWith('{"bench":"ingress"'))
        .map((line) => JSON.parse(line) as Printed);
      expect(printed.map((r) => [r.adapter, r.status])).toEqual([
        ['postgres', 'ok'],
        ['kafka', 'ok'],
      ]);
      for (const result of printed) {
        expect(result.acceptedPerSecond).toBeGreaterThan(0);
        expect(result.p50Ms).toBeGreaterThan(0);
        expect(result.p99Ms).toBeGreaterThanOrEqual(result.p50Ms);
        expect(result.relayCpuMsPerMessage).toBeGreaterThan(0);
        expect(result.details.sessions).toBe(20);
        expect(result.details.messageOctets).toBeGreaterThanOrEqual(5 * 1024);
        expect(result.details.measured.accepted).toBe(result.details.measured.attempted);
        expect(result.details.large).toMatchObject({ accepted: 4 });
        expect(result.details.large.messageOctets).toBeGreaterThanOrEqual(30_000_000);
        expect(result.peakRssMb).toBeGreaterThan(0);
      }
      expect(stdout).toMatch(/\| adapter +\| accepted msg\/s \| p50 ms \| p99 ms \|/);
      expect(stdout).toContain('targets (issue 3): Kafka >= 1000 msg/s');
    },
  );
});
