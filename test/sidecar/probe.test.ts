import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyCanary, createHttpProber, parseFlatMetrics, parseQueryPoolMetrics, parseRuntime } from '../../sidecar/src/probe.ts';
import { type RunningService, startService } from '../support/service.ts';

describe('reading the metrics shapes', () => {
  const flat = {
    pool_implementation: 'DuckDBConnectionPool',
    pool_size: 5,
    active_connections: 2,
    idle_connections: 2,
    unavailable_connections: 1,
    queue_depth: 0,
    oldest_wait_ms: 0,
    total_queries_timeout: 7,
  };

  it("reads this service's flat /api/v1/metrics", () => {
    expect(parseFlatMetrics(flat)).toEqual({
      source: 'flat',
      poolSize: 5,
      active: 2,
      idle: 2,
      live: 4,
      queueDepth: 0,
      oldestWaitMs: 0,
      totalQueriesTimeout: 7,
      poolImplementation: 'DuckDBConnectionPool',
    });
  });

  it.each<[string, unknown, string]>([
    ['a list', [], 'not a JSON object'],
    ["Arc's counter snapshot", { http_requests_total: 3 }, 'missing numbers pool_size, active_connections, idle_connections, queue_depth'],
    ['a string where a number belongs', { ...flat, queue_depth: '0' }, 'missing number queue_depth'],
  ])('says why %s is not the flat shape', (_name, body, why) => {
    expect(parseFlatMetrics(body)).toBe(why);
  });

  it("reads upstream Arc's /api/v1/metrics/query-pool, counting connections marked unhealthy as lost", () => {
    const body = {
      timestamp: '2025-01-01T00:00:00Z',
      pool: { pool_size: 5, active_connections: 1, idle_connections: 4, queue_depth: 2, total_queries_timeout: 3 },
      connections: [{ connection_id: 0, is_healthy: true }, { connection_id: 1, is_healthy: false }, { connection_id: 2, is_healthy: false }],
    };
    expect(parseQueryPoolMetrics(body)).toEqual({
      source: 'query-pool',
      poolSize: 5,
      active: 1,
      idle: 4,
      live: 3,
      queueDepth: 2,
      oldestWaitMs: undefined,
      totalQueriesTimeout: 3,
      poolImplementation: undefined,
    });
    expect(parseQueryPoolMetrics({ timestamp: 'x' })).toBe('no "pool" object');
  });

  it("reads this service's query-pool shape without counting its out-of-service slots twice", () => {
    const body = { timestamp: 'x', pool: { ...flat }, connections: [{ state: 'busy' }, { state: 'replacing' }] };
    expect(parseQueryPoolMetrics(body)).toMatchObject({ live: 4 });
  });

  it.each<[string, number, unknown, string]>([
    ['a result', 200, { success: true, data: [[1]] }, 'ok'],
    ["this service's wait deadline", 503, { success: false, error: 'No available connections after 5.0s', code: 'ARC_ERR_POOL_TIMEOUT' }, 'wait-deadline'],
    ["upstream Arc's wait deadline (HTTP 200, success false)", 200, { success: false, error: 'Timeout waiting for database connection' }, 'wait-deadline'],
    ['a full wait queue', 503, { success: false, error: 'Query queue is full (1000 waiting); try again later', code: 'ARC_ERR_QUEUE_FULL' }, 'queue-full'],
    ['another server error', 500, { success: false, error: 'Internal server error' }, 'error'],
    ['a 401', 401, { success: false, error: 'Missing or invalid API token' }, 'error'],
    ['a non-JSON 502', 502, undefined, 'error'],
  ])('classifies the canary answer: %s', (_name, status, body, kind) => {
    expect(classifyCanary(status, body, 1).kind).toBe(kind);
  });

  it('reads the runtime report', () => {
    expect(parseRuntime({ pool_implementation: 'DuckDBConnectionPool', loaded_modules: ['/a.js'] })).toEqual({
      poolImplementation: 'DuckDBConnectionPool',
      loadedModules: ['/a.js'],
    });
    expect(parseRuntime({ loaded_modules: [1] })).toBe('"loaded_modules" is not a list of paths');
  });
});

describe('probing the real service', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService({ DUCKDB_POOL_SIZE: '2' });
  });
  afterAll(async () => svc.close());

  it('reads the pool, the runtime and runs the canary', async () => {
    const observed: string[] = [];
    const p = createHttpProber({
      baseUrl: svc.url,
      token: svc.token,
      timeoutMs: 2000,
      canaryTimeoutMs: 10_000,
      observe: (endpoint, _s, ok) => observed.push(`${endpoint}:${ok}`),
    });
    expect(await p.poolMetrics()).toMatchObject({ source: 'flat', poolSize: 2, live: 2, queueDepth: 0, poolImplementation: 'DuckDBConnectionPool' });
    const runtime = await p.runtime();
    expect(runtime?.poolImplementation).toBe('DuckDBConnectionPool');
    expect(runtime?.loadedModules.some((m) => m.endsWith('runtime.ts') || m.endsWith('runtime.js'))).toBe(true);
    expect(await p.canary()).toMatchObject({ kind: 'ok' });
    expect(observed).toEqual(['metrics:true', 'runtime:true', 'canary:true']);
  });

  it('says when its token is refused, and how to fix it', async () => {
    const p = createHttpProber({ baseUrl: svc.url, token: 'wrong-token-000', timeoutMs: 2000, canaryTimeoutMs: 2000 });
    await expect(p.poolMetrics()).rejects.toThrow(/answered HTTP 401 \(check ARC_API_TOKEN \/ ARC_API_TOKEN_FILE\)/);
    expect(await p.canary()).toMatchObject({ kind: 'error', message: 'HTTP 401: Missing or invalid API token' });
  });
});

describe('probing a service that misbehaves', () => {
  let hang: Server;
  let hangPort = 0;
  const sockets: Socket[] = [];
  let redirect: HttpServer;
  let redirectPort = 0;
  let redirectTargetHits = 0;
  let target: HttpServer;

  beforeAll(async () => {
    // Accepts connections and never answers: a wedged event loop, as far as a client can tell.
    hang = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    hangPort = (hang.address() as AddressInfo).port;
    target = createHttpServer((_req, res) => {
      redirectTargetHits++;
      res.end('{}');
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    const targetPort = (target.address() as AddressInfo).port;
    redirect = createHttpServer((req, res) => res.writeHead(302, { location: `http://127.0.0.1:${targetPort}${req.url}` }).end());
    await new Promise<void>((r) => redirect.listen(0, '127.0.0.1', r));
    redirectPort = (redirect.address() as AddressInfo).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all([hang, redirect, target].map((s) => new Promise((r) => s.close(r))));
  });

  it('gives up on a service that does not answer within PROBE_TIMEOUT_SECONDS', async () => {
    const p = createHttpProber({ baseUrl: `http://127.0.0.1:${hangPort}`, token: 't', timeoutMs: 200, canaryTimeoutMs: 300 });
    const t0 = Date.now();
    await expect(p.poolMetrics()).rejects.toThrow(`no answer from http://127.0.0.1:${hangPort}/api/v1/metrics within 0.2s`);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await p.canary()).toMatchObject({ kind: 'error', message: expect.stringContaining('within 0.3s') as unknown });
  });

  it('says connection refused when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const p = createHttpProber({ baseUrl: `http://127.0.0.1:${port}`, token: undefined, timeoutMs: 1000, canaryTimeoutMs: 1000 });
    await expect(p.poolMetrics()).rejects.toThrow(`no answer from http://127.0.0.1:${port}/api/v1/metrics: ECONNREFUSED`);
  });

  it('never follows a redirect away from the URL it was given', async () => {
    const p = createHttpProber({ baseUrl: `http://127.0.0.1:${redirectPort}`, token: 't', timeoutMs: 1000, canaryTimeoutMs: 1000 });
    await expect(p.poolMetrics()).rejects.toThrow(/no answer from/);
    expect((await p.canary()).kind).toBe('error');
    expect(redirectTargetHits).toBe(0);
  });
});
