import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type {} from 'vitest';

declare module 'vitest' {
  /** What the global setup hands to every test file (inject('kafkaBrokers')). */
  export interface ProvidedContext {
    kafkaBrokers: string[];
  }
}

const run = promisify(execFile);
const script = fileURLToPath(new URL('../../../deploy/kafka/kafka.sh', import.meta.url));

/** The single-node broker that deploy/kafka runs for tests and benchmarks. */
export const TEST_KAFKA_BROKERS = ['127.0.0.1:9092'];

async function kafka(command: 'start' | 'stop'): Promise<string> {
  const { stdout } = await run('bash', [script, command], { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/**
 * Starts the broker unless it is already running (fetching the jars with Maven the first time).
 * Returns a function that stops it again only if this call started it: a broker that another run
 * started (the script says "already running", also after waiting for a concurrent start) stays up.
 */
export async function ensureKafkaBroker(): Promise<() => Promise<void>> {
  const output = await kafka('start');
  if (output.includes('already running')) return async () => undefined;
  return async () => {
    await kafka('stop');
  };
}
