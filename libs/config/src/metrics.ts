import { Counter, Gauge, Histogram, register } from 'prom-client';

/**
 * Prometheus metrics on the process-wide registry that the admin API serves at /metrics. Getting
 * a metric twice (several Nest apps in one process, or tests) returns the one registered first.
 */
function existing<T>(name: string): T | undefined {
  return register.getSingleMetric(name) as T | undefined;
}

export function counter<L extends string>(
  name: string,
  help: string,
  labelNames: readonly L[] = [],
): Counter<L> {
  return existing<Counter<L>>(name) ?? new Counter({ name, help, labelNames });
}

export function gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
  return existing<Gauge<L>>(name) ?? new Gauge({ name, help, labelNames });
}

export function histogram<L extends string>(
  name: string,
  help: string,
  buckets: number[],
  labelNames: readonly L[] = [],
): Histogram<L> {
  return existing<Histogram<L>>(name) ?? new Histogram({ name, help, buckets, labelNames });
}

export { register as metricsRegistry };
