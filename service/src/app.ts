import type { DuckDBConnection } from '@duckdb/node-api';
import type { FlatPoolMetrics, QueryPoolMetrics, RuntimeInfo } from '@arcops/common';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { TokenAuth, tokenFromHeaders } from './auth.ts';
import type { ServiceConfig } from './config.ts';
import { ArcError, badRequestError, isArcError, queryCancelledError, unauthorizedError } from './errors.ts';
import { compressStream, compressWhole, MIN_COMPRESS_BYTES, negotiateEncoding } from './compress.ts';
import { QueryRegistry } from './registry.ts';
import type { ServiceMetrics } from './metrics.ts';
import { DuckDBConnectionPool } from './pool.ts';
import type { Format, QueryRequest, QueryService } from './query.ts';
import { isPriority, type Priority } from './wait-queue.ts';

export interface AppDeps {
  pool: DuckDBConnectionPool<DuckDBConnection>;
  queries: QueryService;
  auth: TokenAuth;
  logger: FastifyBaseLogger;
  metrics: ServiceMetrics;
  version: string;
  loadedModules: () => string[];
  /** True once shutdown began: responses then close their connection (no keep-alive). */
  isShuttingDown?: () => boolean;
  /** The running and recent queries (GET/DELETE /api/v1/queries); one of its own when absent. */
  registry?: QueryRegistry;
  /** libuv's threadpool size the process runs with (reported by /api/v1/runtime). */
  threadpoolSize: number;
  startedAt?: number;
}

type AppConfig = Pick<ServiceConfig, 'bodyLimitBytes'>;

function sendError(reply: FastifyReply, err: ArcError): FastifyReply {
  if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
  return reply.code(err.statusCode).type('application/json').send({ success: false, error: err.message, code: err.code });
}

/** Validates the query body by hand: clearer messages than a schema validator, same speed. */
export function parseQueryBody(body: unknown): QueryRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequestError('The body must be a JSON object like {"sql": "SELECT 1"}');
  }
  const b = body as Record<string, unknown>;
  if (b.sql === undefined) throw badRequestError('Missing "sql": send {"sql": "SELECT ..."}');
  if (typeof b.sql !== 'string') throw badRequestError('"sql" must be a string');
  if (b.sql.trim() === '') throw badRequestError('"sql" must not be empty');
  if (b.sql.includes('\0')) throw badRequestError('"sql" holds a NUL character: DuckDB would run only the part before it, so it is refused');
  let format: Format = 'json';
  if (b.format !== undefined && b.format !== null) {
    if (b.format !== 'json' && b.format !== 'csv') throw badRequestError(`"format" must be "json" or "csv", got ${JSON.stringify(b.format)}`);
    format = b.format;
  }
  let limit: number | undefined;
  if (b.limit !== undefined && b.limit !== null) {
    if (typeof b.limit !== 'number' || !Number.isSafeInteger(b.limit) || b.limit < 0) {
      throw badRequestError(`"limit" must be a non-negative integer, got ${JSON.stringify(b.limit)}`);
    }
    limit = b.limit;
  }
  let priority: Priority = 'normal';
  if (b.priority !== undefined && b.priority !== null) {
    if (!isPriority(b.priority)) throw badRequestError(`"priority" must be one of low, normal, high, critical; got ${JSON.stringify(b.priority)}`);
    priority = b.priority;
  }
  let csvNull: string | undefined;
  if (b.csv_null !== undefined && b.csv_null !== null) {
    if (typeof b.csv_null !== 'string' || b.csv_null.length > 64 || /[\r\n",]/.test(b.csv_null)) {
      throw badRequestError('"csv_null" must be a string of at most 64 characters without quotes, commas or line breaks, like "\\N" or "NULL"');
    }
    if (format !== 'csv') throw badRequestError('"csv_null" applies to "format": "csv" only');
    csvNull = b.csv_null;
  }
  return { sql: b.sql, format, limit, priority, csvNull };
}

/** Arc's warning levels for a row estimate: none, low (> 10 000), medium (> 100 000), high (> 1 000 000). */
export function estimateWarning(rows: number): { warning_level: 'none' | 'low' | 'medium' | 'high'; warning_message: string } {
  const n = rows.toLocaleString('en-US');
  if (rows > 1_000_000) return { warning_level: 'high', warning_message: `Large answer: ${n} rows. Expect minutes and much memory; add filters, an aggregate or a LIMIT.` };
  if (rows > 100_000) return { warning_level: 'medium', warning_message: `Medium answer: ${n} rows. Expect tens of seconds.` };
  if (rows > 10_000) return { warning_level: 'low', warning_message: `${n} rows: should be quick.` };
  return { warning_level: 'none', warning_message: `Small answer: ${n} rows.` };
}

/** How a query's end shows in the running-queries API. */
function endStatus(err: unknown): 'cancelled' | 'failed' | 'timed_out' {
  if (!isArcError(err)) return 'failed';
  if (err.code === 'ARC_ERR_QUERY_TIMEOUT') return 'timed_out';
  if (err.code === 'ARC_ERR_QUERY_CANCELLED' || err.code === 'ARC_ERR_CLIENT_GONE') return 'cancelled';
  return 'failed';
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export function flatMetrics(deps: Pick<AppDeps, 'pool' | 'queries'>, startedAt: number): FlatPoolMetrics {
  const s = deps.pool.getStats();
  const c = deps.queries.counters;
  return {
    pool_implementation: DuckDBConnectionPool.implementation,
    pool_size: s.size,
    active_connections: s.active,
    idle_connections: s.idle,
    unavailable_connections: s.unavailable,
    queue_depth: s.queueDepth,
    oldest_wait_ms: round(s.oldestWaitMs),
    total_queries_executed: c.executed,
    total_queries_failed: c.failed,
    total_queries_timeout: s.totalWaitTimeouts,
    total_query_execution_timeouts: c.executionTimeouts,
    total_queue_full_rejections: s.totalQueueFull,
    total_connections_recreated: s.totalRecreated,
    total_connection_failures: s.totalCreateFailures,
    avg_wait_time_ms: s.totalAcquired === 0 ? 0 : round(s.totalWaitMs / s.totalAcquired),
    avg_execution_time_ms: c.executed === 0 ? 0 : round(c.totalExecutionMs / c.executed),
    uptime_seconds: Math.round((Date.now() - startedAt) / 1000),
  };
}

/** The query service's HTTP API (Arc-compatible). Listening is the caller's business. */
export function buildApp(config: AppConfig, deps: AppDeps): FastifyInstance {
  const startedAt = deps.startedAt ?? Date.now();
  const registry = deps.registry ?? new QueryRegistry();
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
    // No per-request child logger (a pino child per request is measurable on the query path);
    // the few per-request log lines carry the request id themselves.
    childLoggerFactory: (logger) => logger,
    bodyLimit: config.bodyLimitBytes,
    return503OnClosing: true,
  });

  // During shutdown, answer and close: a keep-alive socket would hold the server open.
  // (Callback-style hooks: no promise per request on the hot path.)
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (deps.isShuttingDown?.() === true) reply.header('connection', 'close');
    done(null, payload);
  });

  const requireToken = (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void => {
    if (deps.auth.verify(tokenFromHeaders(req.headers))) {
      done();
      return;
    }
    void sendError(reply, unauthorizedError());
  };

  app.setErrorHandler((err: FastifyError | ArcError, req, reply) => {
    if (isArcError(err)) return sendError(reply, err);
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) req.log.error({ reqId: req.id, err }, 'unhandled error');
    const message = status === 500 ? 'Internal server error' : status === 413 ? `Request body is larger than ${config.bodyLimitBytes} bytes` : err.message;
    return sendError(reply, new ArcError(err.code ?? 'ARC_ERR_REQUEST', status, message));
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, new ArcError('ARC_ERR_NOT_FOUND', 404, `No route for ${req.method} ${req.url.split('?')[0]}`)),
  );

  app.post('/api/v1/query', { onRequest: requireToken }, async (req, reply) => {
    const query = parseQueryBody(req.body);
    const abort = new AbortController();
    const onClose = (): void => {
      if (!reply.raw.writableFinished) abort.abort(new Error('client closed the request'));
    };
    reply.raw.once('close', onClose);
    const viewer = TokenAuth.fingerprint(tokenFromHeaders(req.headers) ?? '');
    const id = registry.start(query.sql, viewer, req.ip, query.priority, () => abort.abort(queryCancelledError(id)));
    reply.header('x-arc-query-id', id);
    try {
      const answer = await deps.queries.answer(query, abort.signal);
      reply.type(query.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8');
      if (answer.kind === 'stream') {
        void answer.done.then(
          (s) => registry.end(id, 'completed', { rowCount: s.rowCount }),
          (err: unknown) => registry.end(id, endStatus(err), { error: (err as Error).message }),
        );
      } else {
        registry.end(id, 'completed', { rowCount: answer.summary.rowCount });
      }
      reply.header('vary', 'accept-encoding');
      const encoding = negotiateEncoding(req.headers['accept-encoding']);
      if (answer.kind === 'whole') {
        const s = answer.summary;
        if (query.format === 'csv') {
          reply
            .header('x-row-count', String(s.rowCount))
            .header('x-execution-time-ms', String(round(s.executionMs)))
            .header('x-wait-time-ms', String(round(s.waitMs)));
        }
        if (s.truncated) reply.header('x-truncated', 'true');
        if (encoding !== undefined && answer.body.length >= MIN_COMPRESS_BYTES) {
          return reply.header('content-encoding', encoding).send(compressWhole(answer.body, encoding));
        }
        return reply.send(answer.body);
      }
      // Streamed: the figures come at the end of the JSON body; a failure after the first
      // byte breaks the response (no final chunk) so that no client takes it for complete.
      answer.body.once('error', (err: unknown) => {
        const code = isArcError(err) ? err.code : 'ARC_ERR_INTERNAL';
        const level = code === 'ARC_ERR_CLIENT_GONE' ? 'debug' : 'warn';
        req.log[level]({ reqId: req.id, code, err }, 'answer broken after its first byte');
      });
      if (encoding !== undefined) return reply.header('content-encoding', encoding).send(compressStream(answer.body, encoding));
      return reply.send(answer.body);
    } catch (err) {
      registry.end(id, endStatus(err), { error: (err as Error).message });
      if (isArcError(err)) {
        const level = err.statusCode >= 500 && err.code !== 'ARC_ERR_CLIENT_GONE' ? 'warn' : 'debug';
        req.log[level]({ reqId: req.id, code: err.code, priority: query.priority }, err.message);
        if (err.code === 'ARC_ERR_CLIENT_GONE') return reply;
      }
      throw err;
    } finally {
      reply.raw.off('close', onClose);
    }
  });

  app.post('/api/v1/query/estimate', { onRequest: requireToken }, async (req, reply) => {
    const { sql, priority } = parseQueryBody(req.body);
    const abort = new AbortController();
    const onClose = (): void => {
      if (!reply.raw.writableFinished) abort.abort(new Error('client closed the request'));
    };
    reply.raw.once('close', onClose);
    const started = performance.now();
    try {
      // The statement's own text inside a count: the guard judges the whole, as for any query.
      const counted = `SELECT count(*) AS n FROM (\n${sql.replace(/[\s;]+$/, '')}\n) AS arc_estimate`;
      const result = await deps.queries.run({ sql: counted, format: 'json', limit: undefined, priority }, abort.signal);
      const rows = Number((JSON.parse(result.body) as { data: number[][] }).data[0]?.[0] ?? 0);
      return { success: true, estimated_rows: rows, ...estimateWarning(rows), execution_time_ms: round(performance.now() - started) };
    } catch (err) {
      if (!isArcError(err)) throw err;
      if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
      return reply.code(err.statusCode).send({
        success: false,
        estimated_rows: null,
        warning_level: 'error',
        execution_time_ms: round(performance.now() - started),
        error: err.message,
        code: err.code,
      });
    } finally {
      reply.raw.off('close', onClose);
    }
  });

  const viewerOf = (req: FastifyRequest): string => TokenAuth.fingerprint(tokenFromHeaders(req.headers) ?? '');
  const listActive = async (req: FastifyRequest) => {
    const queries = registry.active(viewerOf(req));
    return { success: true, count: queries.length, queries };
  };
  app.get('/api/v1/queries', { onRequest: requireToken }, listActive);
  app.get('/api/v1/queries/active', { onRequest: requireToken }, listActive);
  app.get('/api/v1/queries/history', { onRequest: requireToken }, async (req) => {
    const raw = (req.query as Record<string, string | undefined>).limit;
    const limit = raw === undefined ? 50 : Number(raw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw badRequestError('"limit" must be an integer from 1 to 1000');
    const queries = registry.history(viewerOf(req), limit);
    return { success: true, count: queries.length, queries };
  });
  app.get('/api/v1/queries/:id', { onRequest: requireToken }, async (req) => {
    const { id } = req.params as { id: string };
    const query = registry.get(id, viewerOf(req));
    if (query === undefined) throw new ArcError('ARC_ERR_NOT_FOUND', 404, 'Query not found');
    return { success: true, query };
  });
  app.delete('/api/v1/queries/:id', { onRequest: requireToken }, async (req) => {
    const { id } = req.params as { id: string };
    const outcome = registry.cancel(id, viewerOf(req));
    if (outcome === 'not-found') throw new ArcError('ARC_ERR_NOT_FOUND', 404, 'Query not found');
    if (outcome === 'finished') throw new ArcError('ARC_ERR_QUERY_FINISHED', 409, `Query already ${registry.statusOf(id) ?? 'finished'}`);
    if (outcome === 'not-yours') throw new ArcError('ARC_ERR_FORBIDDEN', 403, 'The query was sent with another token: only its sender may cancel it');
    return { success: true, message: 'Query cancelled' };
  });

  app.get('/api/v1/metrics', { onRequest: requireToken }, async () => flatMetrics(deps, startedAt));

  app.get('/api/v1/metrics/query-pool', { onRequest: requireToken }, async (): Promise<QueryPoolMetrics> => {
    const flat = flatMetrics(deps, startedAt);
    return {
      timestamp: new Date().toISOString(),
      pool: { ...flat, queue_by_priority: deps.pool.getStats().queueByPriority },
      connections: deps.pool.slotInfo().map((s) => ({
        connection_id: s.id,
        state: s.state,
        generation: s.generation,
        queries_executed: s.queries,
        age_seconds: Math.round(s.ageMs / 1000),
        idle_ms: Math.round(s.idleMs),
        busy_ms: Math.round(s.busyMs),
        last_error: s.lastError ?? null,
      })),
    };
  });

  app.get('/api/v1/runtime', { onRequest: requireToken }, async (): Promise<RuntimeInfo> => ({
    pool_implementation: DuckDBConnectionPool.implementation,
    version: deps.version,
    node_version: process.version,
    pid: process.pid,
    threadpool_size: deps.threadpoolSize,
    loaded_modules: deps.loadedModules(),
  }));

  app.get('/health', async () => ({ status: 'ok' }));

  app.get('/ready', async (_req, reply) => {
    const live = deps.pool.liveConnections;
    if (deps.pool.isClosed || live === 0) {
      return reply.code(503).send({ status: 'unavailable', live_connections: live, pool_size: deps.pool.size });
    }
    return { status: 'ready', live_connections: live, pool_size: deps.pool.size };
  });

  app.get('/metrics', async (_req, reply) => {
    const text = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(text);
  });

  return app;
}
