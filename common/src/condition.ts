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

/** The reason for a forbidden module in the service's tree or memory: an image fault when a fresh pod reports it. */
export const FORBIDDEN_MODULE_REASON: PoolHealthReason = 'ForbiddenModule';

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
