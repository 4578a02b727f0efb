/**
 * The flat pool metrics served at `GET /api/v1/metrics`: the figures the deployment guide
 * tells operators to watch. The sidecar reads this shape (and upstream Arc's query-pool shape).
 */
export interface FlatPoolMetrics {
  pool_implementation: string;
  pool_size: number;
  active_connections: number;
  idle_connections: number;
  /** Slots whose connection is being checked or recreated and cannot serve right now. */
  unavailable_connections: number;
  queue_depth: number;
  oldest_wait_ms: number;
  total_queries_executed: number;
  total_queries_failed: number;
  /** Callers that gave up waiting for a connection (the pool's wait deadline). */
  total_queries_timeout: number;
  /** Queries interrupted because they ran longer than the query timeout. */
  total_query_execution_timeouts: number;
  total_queue_full_rejections: number;
  total_connections_recreated: number;
  total_connection_failures: number;
  avg_wait_time_ms: number;
  avg_execution_time_ms: number;
  uptime_seconds: number;
}

/** Upstream Arc's `GET /api/v1/metrics/query-pool` shape (the fields the sidecar relies on). */
export interface QueryPoolMetrics {
  timestamp: string;
  pool: {
    pool_size: number;
    active_connections: number;
    idle_connections: number;
    queue_depth: number;
    total_queries_executed?: number;
    total_queries_failed?: number;
    total_queries_timeout?: number;
    total_connections_recreated?: number;
    avg_wait_time_ms?: number;
    avg_execution_time_ms?: number;
    oldest_wait_ms?: number;
    pool_implementation?: string;
    [key: string]: unknown;
  };
  connections: Array<Record<string, unknown>>;
}

/** `GET /api/v1/runtime`. */
export interface RuntimeInfo {
  pool_implementation: string;
  version: string;
  node_version: string;
  pid: number;
  /** libuv threadpool size (UV_THREADPOOL_SIZE); must exceed pool_size. */
  threadpool_size: number;
  loaded_modules: string[];
}
