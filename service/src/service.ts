import { readFileSync } from 'node:fs';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './app.ts';
import { TokenAuth } from './auth.ts';
import type { ServiceConfig } from './config.ts';
import { duckdbConnectionFactory, openDatabase, readCatalog } from './duckdb.ts';
import { QUERY_OUTCOMES, createMetrics } from './metrics.ts';
import { PlanCache } from './plan-cache.ts';
import { type ConnectionFactory, DuckDBConnectionPool } from './pool.ts';
import { QueryService } from './query.ts';
import { SqlPolicy } from './sql-policy.ts';
import { loadedModules } from './runtime.ts';

export const SERVICE_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface Service {
  app: FastifyInstance;
  pool: DuckDBConnectionPool<DuckDBConnection>;
  queries: QueryService;
  instance: DuckDBInstance;
  /** The token made at start when none was configured. */
  generatedToken: string | undefined;
  /**
   * Stops the service: no new requests, in-flight ones finish within the grace period, then
   * running queries are interrupted, waiters get 503, and every connection is closed.
   */
  close(graceMs?: number): Promise<void>;
}

export interface ServiceDeps {
  logger: Logger;
  /** Collect Node's default process metrics (off in tests that build many services). */
  defaultMetrics?: boolean;
  /**
   * Test seam: wraps the DuckDB connection factory (e.g. to make recreation fail and so
   * lose pool capacity on purpose). Production wiring (main.ts) never sets it.
   */
  wrapConnectionFactory?: (factory: ConnectionFactory<DuckDBConnection>) => ConnectionFactory<DuckDBConnection>;
}

async function loadPolicy(instance: DuckDBInstance): Promise<SqlPolicy> {
  const conn = await instance.connect();
  try {
    return await SqlPolicy.load(conn);
  } finally {
    conn.closeSync();
  }
}

/** Opens DuckDB and the pool and builds the HTTP app: everything but listening. */
export async function createService(config: ServiceConfig, deps: ServiceDeps): Promise<Service> {
  const log = deps.logger;
  const instance = await openDatabase(config);
  const plans = new PlanCache(config.planCacheSize);
  const { catalog, policy } = await Promise.all([readCatalog(instance), loadPolicy(instance)]).then(
    ([catalog, policy]) => ({ catalog, policy }),
    (err: unknown) => {
      instance.closeSync();
      throw err;
    },
  );
  if (policy.unreviewed.length > 0) {
    log.warn(
      { unreviewed: policy.unreviewed },
      'this DuckDB exposes functions the read-only review does not list: they are refused until reviewed (npm run sql:functions)',
    );
  }
  const baseFactory = duckdbConnectionFactory(instance, plans);
  const factory = deps.wrapConnectionFactory?.(baseFactory) ?? baseFactory;
  const pool = await DuckDBConnectionPool.open(factory, {
    size: config.poolSize,
    waitTimeoutMs: config.poolTimeoutMs,
    maxQueue: config.maxQueue,
    onConnectionError: (slot, err) => log.error({ slot, err }, 'could not recreate a pool connection; retrying'),
  }).catch((err: unknown) => {
    instance.closeSync();
    throw err;
  });
  const metricsRef: { observe?: (outcome: string, s: number) => void } = {};
  const queries = new QueryService(pool, {
    queryTimeoutMs: config.queryTimeoutMs,
    largeResultRows: config.largeResultRows,
    maxResultRows: config.maxResultRows,
    maxResultBytes: config.maxResultBytes,
    policy,
    plans: { cache: plans, catalog },
    onQueryDone: (outcome, seconds) => metricsRef.observe?.(outcome, seconds),
  });
  const metrics = createMetrics(pool, queries.counters, deps.defaultMetrics ?? true, plans);
  const byOutcome = new Map(QUERY_OUTCOMES.map((o) => [o, metrics.queryDuration.labels(o)]));
  metricsRef.observe = (outcome, seconds) => byOutcome.get(outcome as (typeof QUERY_OUTCOMES)[number])?.observe(seconds);

  let generatedToken: string | undefined;
  let tokens = config.apiTokens;
  if (tokens.length === 0) {
    generatedToken = TokenAuth.generateToken();
    tokens = [generatedToken];
    log.warn({ token: generatedToken }, 'no ARC_API_TOKENS configured: generated an API token for this process (shown once)');
  }
  let shuttingDown = false;
  const app = buildApp(config, {
    pool,
    queries,
    auth: new TokenAuth(tokens),
    logger: log,
    metrics,
    version: SERVICE_VERSION,
    loadedModules,
    threadpoolSize: config.threadpoolSize,
    isShuttingDown: () => shuttingDown,
  });

  let closing: Promise<void> | undefined;
  const close = (graceMs = config.shutdownGraceMs): Promise<void> => {
    closing ??= (async () => {
      shuttingDown = true;
      // Keep-alive sockets that turn idle after close() began would hold the server open:
      // sweep them, and after the grace period cut whatever is left.
      const sweep = setInterval(() => app.server.closeIdleConnections(), 100);
      let cut: NodeJS.Timeout | undefined;
      const grace = setTimeout(() => {
        const n = queries.interruptAll();
        log.warn({ interrupted: n }, 'shutdown grace period over: interrupting running queries');
        void pool.close();
        cut = setTimeout(() => app.server.closeAllConnections(), 1000);
      }, graceMs);
      try {
        await app.close();
        await pool.close();
      } finally {
        clearInterval(sweep);
        clearTimeout(grace);
        clearTimeout(cut);
        instance.closeSync();
      }
    })();
    return closing;
  };

  return { app, pool, queries, instance, generatedToken, close };
}
