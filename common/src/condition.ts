/** The pod condition the sidecar writes and the operator reads (and the readiness gate names). */
export const POOL_HEALTHY_CONDITION = 'arcops.dev/PoolHealthy';

/** Every reason the sidecar may give; `Healthy` is the only one with status True. */
export const POOL_HEALTH_REASONS = [
  'Healthy',
  'PoolExhausted',
  'PendingTimeouts',
  'PoolCapacityLost',
  'ForbiddenModule',
  'ServiceUnreachable',
] as const;

export type PoolHealthReason = (typeof POOL_HEALTH_REASONS)[number];

export function isPoolHealthReason(value: unknown): value is PoolHealthReason {
  return typeof value === 'string' && (POOL_HEALTH_REASONS as readonly string[]).includes(value);
}

/** The pool implementation this project ships; anything else reported by a service is suspect. */
export const EXPECTED_POOL_IMPLEMENTATION = 'DuckDBConnectionPool';

/** Default forbidden-module globs: the broken pool of the incident and its compiled twins. */
export const DEFAULT_FORBIDDEN_MODULES: readonly string[] = [
  '**/api/duckdb_pool_simple.py',
  '**/api/__pycache__/duckdb_pool_simple*.pyc',
  '**/duckdb_pool_simple.js',
  '**/duckdb_pool_simple.mjs',
  '**/duckdb_pool_simple.cjs',
  '**/duckdb_pool_simple.ts',
];
