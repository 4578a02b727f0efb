import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { PlanCache } from './plan-cache.ts';
import type { DuckDBConnectionPool } from './pool.ts';
import type { QueryCounters } from './query.ts';

/** How a query ended (arc_service_query_duration_seconds{outcome}). */
export const QUERY_OUTCOMES = ['success', 'error', 'timeout', 'aborted', 'refused'] as const;

/**
 * prom-client's default metrics that are gauges with a `_total` name (promtool check metrics:
 * "non-counter metrics should not have _total suffix"); the same figures stay available without
 * the suffix, by type (`nodejs_active_handles{type}`, ...).
 */
const MISNAMED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export interface ServiceMetrics {
  registry: Registry;
  queryDuration: Histogram<'outcome'>;
}

/** Sets a counter to an absolute total kept elsewhere (the pool's and query service's counts). */
function totalCounter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** Prometheus metrics of the service on its own Registry (never the global one). */
export function createMetrics(pool: DuckDBConnectionPool<unknown>, counters: QueryCounters, defaults = true, plans?: PlanCache): ServiceMetrics {
  const registry = new Registry();
  if (defaults) {
    collectDefaultMetrics({ register: registry, prefix: 'arc_service_' });
    for (const name of MISNAMED_DEFAULT_METRICS) registry.removeSingleMetric(`arc_service_${name}`);
  }
  new Gauge({
    name: 'arc_service_pool_size',
    help: 'Configured number of pooled DuckDB connections',
    registers: [registry],
    collect() {
      this.set(pool.size);
    },
  });
  new Gauge({
    name: 'arc_service_pool_connections',
    help: 'Pooled connections by state (active, idle, unavailable = being checked or recreated)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const s = pool.getStats();
      this.set({ state: 'active' }, s.active);
      this.set({ state: 'idle' }, s.idle);
      this.set({ state: 'unavailable' }, s.unavailable);
    },
  });
  new Gauge({
    name: 'arc_service_pool_queue_depth',
    help: 'Callers waiting for a connection, by priority',
    labelNames: ['priority'],
    registers: [registry],
    collect() {
      const s = pool.getStats();
      for (const [p, n] of Object.entries(s.queueByPriority)) this.set({ priority: p }, n);
    },
  });
  new Gauge({
    name: 'arc_service_pool_oldest_wait_seconds',
    help: 'How long the oldest waiting caller has waited',
    registers: [registry],
    collect() {
      this.set(pool.getStats().oldestWaitMs / 1000);
    },
  });
  totalCounter(registry, 'arc_service_pool_wait_timeouts_total', 'Callers that gave up waiting for a connection (503)', () => pool.getStats().totalWaitTimeouts);
  totalCounter(registry, 'arc_service_pool_queue_full_total', 'Callers refused because the wait queue was full (503)', () => pool.getStats().totalQueueFull);
  totalCounter(registry, 'arc_service_pool_connections_recreated_total', 'Connections replaced (after large results or failed checks)', () => pool.getStats().totalRecreated);
  totalCounter(registry, 'arc_service_pool_connection_failures_total', 'Failed attempts to create a connection', () => pool.getStats().totalCreateFailures);
  totalCounter(registry, 'arc_service_queries_executed_total', 'Queries that succeeded', () => counters.executed);
  totalCounter(registry, 'arc_service_queries_failed_total', 'Queries that failed (bad SQL or errors)', () => counters.failed);
  totalCounter(registry, 'arc_service_queries_refused_total', 'Queries refused by the read-only sandbox', () => counters.refused);
  totalCounter(registry, 'arc_service_query_timeouts_total', 'Queries interrupted by the query timeout (504)', () => counters.executionTimeouts);
  totalCounter(registry, 'arc_service_query_client_aborts_total', 'Queries cancelled because the client went away', () => counters.clientAborts);
  if (plans !== undefined) {
    totalCounter(registry, 'arc_service_plan_cache_hits_total', 'Queries run from a reused prepared plan', () => plans.hits);
    totalCounter(registry, 'arc_service_plan_cache_misses_total', 'Reusable queries that had to be prepared first', () => plans.misses);
    new Gauge({
      name: 'arc_service_plan_cache_plans',
      help: 'Prepared plans held, over all pooled connections',
      registers: [registry],
      collect() {
        this.set(plans.size);
      },
    });
  }
  const queryDuration = new Histogram({
    name: 'arc_service_query_duration_seconds',
    help: 'Time from request to result, including the wait for a connection',
    labelNames: ['outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  // Every outcome from 0, so that the first of each is an increase.
  for (const outcome of QUERY_OUTCOMES) queryDuration.zero({ outcome });
  return { registry, queryDuration };
}
