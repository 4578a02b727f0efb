// The sidecar guards upstream Arc images too. Arc is a different product, so it is stood in for
// by a tiny HTTP server serving Arc's shapes: `/api/v1/metrics` is Arc's counter snapshot (no
// pool figures), the pool lives at `/api/v1/metrics/query-pool`, there is no `/api/v1/runtime`,
// and a query that waits too long answers `{"success": false, "error": "Timeout waiting for
// database connection"}`.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST, type RunningSidecar, startSidecar, waitForReason } from '../support/sidecar.ts';

interface ArcState {
  pool: Record<string, number>;
  connections: Array<{ connection_id: number; is_healthy: boolean; total_queries: number }>;
  queryTimesOut: boolean;
  requests: string[];
}

const healthyPool = (): ArcState['pool'] => ({
  pool_size: 5,
  active_connections: 0,
  idle_connections: 5,
  queue_depth: 0,
  total_queries_executed: 10,
  total_queries_queued: 0,
  total_queries_failed: 0,
  total_queries_timeout: 0,
  avg_wait_time_ms: 0,
  avg_execution_time_ms: 1.5,
});

describe('against upstream Arc (its /api/v1/metrics/query-pool shape)', () => {
  const arc: ArcState = {
    pool: healthyPool(),
    connections: Array.from({ length: 5 }, (_, i) => ({ connection_id: i, is_healthy: true, total_queries: 2 })),
    queryTimesOut: false,
    requests: [],
  };
  let server: Server;
  let url = '';
  let sc: RunningSidecar;

  beforeAll(async () => {
    server = createServer((req, res) => {
      arc.requests.push(`${req.method} ${req.url}`);
      const send = (status: number, body: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      if (req.method === 'GET' && req.url === '/api/v1/metrics') return send(200, { uptime_sec: 100, http_requests_total: 42, query_requests_total: 10 });
      if (req.method === 'GET' && req.url === '/api/v1/metrics/query-pool') {
        return send(200, { timestamp: new Date().toISOString(), pool: arc.pool, connections: arc.connections });
      }
      if (req.method === 'POST' && req.url === '/api/v1/query') {
        req.resume();
        return req.on('end', () =>
          arc.queryTimesOut
            ? send(200, { success: false, error: 'Timeout waiting for database connection', data: [], columns: [], row_count: 0 })
            : send(200, { success: true, columns: ['1'], data: [[1]], row_count: 1, execution_time_ms: 0.4, wait_time_ms: 0 }),
        );
      }
      return send(404, { detail: 'Not Found' });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    sc = await startSidecar({ ARC_SERVICE_URL: url, ARC_API_TOKEN: 'arc-admin-token', ...FAST });
  });
  afterAll(async () => {
    await sc.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('reads the query-pool shape and finds the pool Healthy', async () => {
    const s = await waitForReason(sc, 'Healthy');
    expect(s.service).toMatchObject({ shape: 'query-pool', pool: { poolSize: 5, live: 5, source: 'query-pool' } });
    // Arc has no runtime report (and nothing is scanned here): the check says it cannot judge, and does not fail.
    expect(s.checks.forbiddenModule).toMatchObject({ status: 'unknown', runtimeEndpoint: false, poolImplementation: null });
    expect(s.checks.pendingTimeouts).toMatchObject({ status: 'ok', oldestWaitSeconds: null });
    expect(arc.requests).toContain('GET /api/v1/metrics/query-pool');
    expect(arc.requests).toContain('POST /api/v1/query');
  });

  it('reports PoolExhausted from Arc figures: all busy and callers queued', async () => {
    arc.pool = { ...healthyPool(), active_connections: 5, idle_connections: 0, queue_depth: 7 };
    const s = await waitForReason(sc, 'PoolExhausted');
    expect(s.message).toMatch(/^all connections busy \(5 of 5\) with 7 callers queued for 1\.\ds$/);
    arc.pool = healthyPool();
    await waitForReason(sc, 'Healthy');
  });

  it("recognises Arc's wait-deadline error in the canary answer", async () => {
    arc.queryTimesOut = true;
    const s = await waitForReason(sc, 'PoolExhausted');
    expect(s.message).toBe('the canary SELECT 1 was refused 2 times in a row: Timeout waiting for database connection');
    arc.queryTimesOut = false;
    await waitForReason(sc, 'Healthy');
  });

  it('reports PoolCapacityLost when Arc marks connections unhealthy (it still counts them as idle)', async () => {
    arc.connections = arc.connections.map((c) => ({ ...c, is_healthy: c.connection_id >= 2 }));
    const s = await waitForReason(sc, 'PoolCapacityLost');
    expect(s.message).toMatch(/^only 3 of 5 connections live for 1\.\ds$/);
    arc.connections = arc.connections.map((c) => ({ ...c, is_healthy: true }));
    await waitForReason(sc, 'Healthy');
  });

  it('reports PendingTimeouts when Arc counts more wait timeouts than allowed in the window', async () => {
    arc.pool = { ...healthyPool(), total_queries_timeout: 5 };
    await new Promise((r) => setTimeout(r, 600));
    expect((await sc.status()).reason).toBe('Healthy');
    arc.pool = { ...healthyPool(), total_queries_timeout: 30 };
    const s = await waitForReason(sc, 'PendingTimeouts');
    expect(s.message).toBe('30 callers gave up waiting for a connection in the last 60.0s (more than 5)');
  });
});
