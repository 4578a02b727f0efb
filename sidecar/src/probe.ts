/**
 * Reads the service over HTTP: pool metrics (this service's flat `/api/v1/metrics`, or upstream
 * Arc's `/api/v1/metrics/query-pool`), the runtime report, and a canary `SELECT 1`. It dials
 * only the URL it is given and never follows redirects. Parsing is pure and exported.
 */
import { http, isPoolQueueFullError, isPoolWaitTimeoutError, nodeHttps } from '@arcops/common';
import type { CanaryOutcome, PoolSample, RuntimeSample } from './checks.ts';
import { describeCause, serviceHttpError, serviceShapeError, serviceTimeoutError, serviceUnreachableError } from './errors.ts';
import type { ProbeEndpoint } from './metrics.ts';

export interface Prober {
  readonly url: string;
  /** Throws a SidecarError when the service gives no usable pool reading. */
  poolMetrics(): Promise<PoolSample>;
  /** Undefined when the service has no runtime endpoint (404, as upstream Arc). */
  runtime(): Promise<RuntimeSample | undefined>;
  /** Never throws: every ending is an outcome. */
  canary(): Promise<CanaryOutcome>;
  /** Aborts every request in flight (shutdown), so none is left open against the service. */
  close(): void;
}

export interface ProberOptions {
  baseUrl: string;
  token: string | undefined;
  timeoutMs: number;
  canaryTimeoutMs: number;
  observe?: (endpoint: ProbeEndpoint, seconds: number, ok: boolean) => void;
  now?: () => number;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(o: Json, key: string): number | undefined {
  const v = o[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function required(o: Json, keys: readonly string[]): string | undefined {
  const missing = keys.filter((k) => num(o, k) === undefined);
  return missing.length === 0 ? undefined : `missing number${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`;
}

const POOL_FIELDS = ['pool_size', 'active_connections', 'idle_connections', 'queue_depth'] as const;

/** This service's flat `GET /api/v1/metrics`; a string says why the body is not that shape. */
export function parseFlatMetrics(body: unknown): PoolSample | string {
  if (!isObject(body)) return 'not a JSON object';
  const missing = required(body, POOL_FIELDS);
  if (missing !== undefined) return missing;
  const active = num(body, 'active_connections')!;
  const idle = num(body, 'idle_connections')!;
  return {
    source: 'flat',
    poolSize: num(body, 'pool_size')!,
    active,
    idle,
    live: active + idle,
    queueDepth: num(body, 'queue_depth')!,
    oldestWaitMs: num(body, 'oldest_wait_ms'),
    totalQueriesTimeout: num(body, 'total_queries_timeout'),
    poolImplementation: typeof body.pool_implementation === 'string' ? body.pool_implementation : undefined,
  };
}

/** Connections an Arc-shaped report marks as broken or out of service. */
function unhealthyConnections(connections: unknown): number {
  if (!Array.isArray(connections)) return 0;
  return connections.filter(
    (c) => isObject(c) && (c.is_healthy === false || c.state === 'checking' || c.state === 'replacing' || c.state === 'closed'),
  ).length;
}

/** Upstream Arc's `GET /api/v1/metrics/query-pool` (`{timestamp, pool:{...}, connections:[...]}`). */
export function parseQueryPoolMetrics(body: unknown): PoolSample | string {
  if (!isObject(body) || !isObject(body.pool)) return 'no "pool" object';
  const pool = body.pool;
  const missing = required(pool, POOL_FIELDS);
  if (missing !== undefined) return `pool: ${missing}`;
  const active = num(pool, 'active_connections')!;
  const idle = num(pool, 'idle_connections')!;
  // This service reports out-of-service slots itself (and leaves them out of active/idle);
  // upstream Arc counts a closed connection as idle, so its per-connection health is used.
  const broken = num(pool, 'unavailable_connections') === undefined ? unhealthyConnections(body.connections) : 0;
  return {
    source: 'query-pool',
    poolSize: num(pool, 'pool_size')!,
    active,
    idle,
    live: Math.max(0, active + idle - broken),
    queueDepth: num(pool, 'queue_depth')!,
    oldestWaitMs: num(pool, 'oldest_wait_ms'),
    totalQueriesTimeout: num(pool, 'total_queries_timeout'),
    poolImplementation: typeof pool.pool_implementation === 'string' ? pool.pool_implementation : undefined,
  };
}

/** `GET /api/v1/runtime`. */
export function parseRuntime(body: unknown): RuntimeSample | string {
  if (!isObject(body)) return 'not a JSON object';
  const modules = body.loaded_modules;
  if (modules !== undefined && (!Array.isArray(modules) || modules.some((m) => typeof m !== 'string'))) {
    return '"loaded_modules" is not a list of paths';
  }
  return {
    poolImplementation: typeof body.pool_implementation === 'string' ? body.pool_implementation : undefined,
    loadedModules: (modules as string[] | undefined) ?? [],
  };
}

/** Classifies the answer to the canary query. */
export function classifyCanary(status: number, body: unknown, ms: number): CanaryOutcome {
  const b = isObject(body) ? body : {};
  const error = typeof b.error === 'string' ? b.error : undefined;
  if (isPoolWaitTimeoutError(b)) return { kind: 'wait-deadline', message: error ?? `HTTP ${status}` };
  if (isPoolQueueFullError(b)) return { kind: 'queue-full', message: error ?? `HTTP ${status}` };
  if (status >= 200 && status < 300 && b.success !== false) return { kind: 'ok', ms };
  return { kind: 'error', message: `HTTP ${status}${error === undefined ? '' : `: ${error}`}` };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

interface Answer {
  status: number;
  text: string;
}

interface Send {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
}

/** One HTTP exchange on a fresh connection; rejects on a socket error, an abort or a redirect. */
function exchange(url: string, init: Send, signal: AbortSignal): Promise<Answer> {
  const client = url.startsWith('https:') ? nodeHttps() : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, { method: init.method ?? 'GET', headers: init.headers, signal, agent: false }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        // Never followed: the sidecar dials only the URL it is given.
        res.resume();
        reject(new Error('request failed', { cause: new Error(`unexpected redirect (HTTP ${status} to ${res.headers.location ?? '?'})`) }));
        return;
      }
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status, text }));
      res.on('close', () => {
        if (!res.complete) reject(new Error('request failed', { cause: new Error('the connection closed before the answer was complete') }));
      });
    });
    // Wrapped so the reason reads as before (e.g. "ECONNREFUSED connect ECONNREFUSED 127.0.0.1:8000").
    req.on('error', (err) => reject(new Error('request failed', { cause: err })));
    req.end(init.body);
  });
}

export function createHttpProber(options: ProberOptions): Prober {
  const now = options.now ?? (() => performance.now());
  const base = options.baseUrl.replace(/\/+$/, '');
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  let shape: 'flat' | 'query-pool' | undefined;
  const closing = new AbortController();

  async function request(path: string, timeoutMs: number, init: Send = {}): Promise<Answer> {
    const url = `${base}${path}`;
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([deadline, closing.signal]);
    try {
      return await exchange(url, { ...init, headers: { ...headers, ...init.headers } }, signal);
    } catch (err) {
      if (deadline.aborted) throw serviceTimeoutError(url, timeoutMs);
      throw serviceUnreachableError(url, closing.signal.aborted ? new Error('the sidecar is shutting down') : err);
    }
  }

  async function timed<T>(endpoint: ProbeEndpoint, fn: () => Promise<T>, ok: (v: T) => boolean = () => true): Promise<T> {
    const t0 = now();
    try {
      const v = await fn();
      options.observe?.(endpoint, (now() - t0) / 1000, ok(v));
      return v;
    } catch (err) {
      options.observe?.(endpoint, (now() - t0) / 1000, false);
      throw err;
    }
  }

  async function flat(): Promise<PoolSample | 'other-shape'> {
    const path = '/api/v1/metrics';
    const a = await request(path, options.timeoutMs);
    if (a.status === 404) return 'other-shape';
    if (a.status !== 200) throw serviceHttpError(`${base}${path}`, a.status, a.text);
    const parsed = parseFlatMetrics(parseJson(a.text));
    return typeof parsed === 'string' ? 'other-shape' : parsed;
  }

  async function queryPool(): Promise<PoolSample> {
    const path = '/api/v1/metrics/query-pool';
    const a = await request(path, options.timeoutMs);
    if (a.status !== 200) throw serviceHttpError(`${base}${path}`, a.status, a.text);
    const parsed = parseQueryPoolMetrics(parseJson(a.text));
    if (typeof parsed === 'string') {
      throw serviceShapeError(`${base}${path}`, `${parsed} (and /api/v1/metrics is not this service's flat shape either)`);
    }
    return parsed;
  }

  return {
    url: base,
    poolMetrics: () =>
      timed('metrics', async () => {
        if (shape !== 'query-pool') {
          const got = await flat();
          if (got !== 'other-shape') {
            shape = 'flat';
            return got;
          }
        }
        try {
          const got = await queryPool();
          shape = 'query-pool';
          return got;
        } catch (err) {
          shape = undefined;
          throw err;
        }
      }),
    runtime: () =>
      timed('runtime', async () => {
        const path = '/api/v1/runtime';
        const a = await request(path, options.timeoutMs);
        if (a.status === 404) return undefined;
        if (a.status !== 200) throw serviceHttpError(`${base}${path}`, a.status, a.text);
        const parsed = parseRuntime(parseJson(a.text));
        if (typeof parsed === 'string') throw serviceShapeError(`${base}${path}`, parsed);
        return parsed;
      }),
    canary: () =>
      timed(
        'canary',
        async (): Promise<CanaryOutcome> => {
          const t0 = now();
          try {
            const a = await request('/api/v1/query', options.canaryTimeoutMs, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ sql: 'SELECT 1', priority: 'normal' }),
            });
            return classifyCanary(a.status, parseJson(a.text), now() - t0);
          } catch (err) {
            return { kind: 'error', message: err instanceof Error ? err.message : describeCause(err) };
          }
        },
        (o) => o.kind === 'ok',
      ),
    close: () => closing.abort(),
  };
}
