import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, type RunningService, SLOW_SQL, startService } from '../support/service.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const run = promisify(execFile);

/** Runs `npm run verify`'s command; resolves with exit code and output whatever the outcome. */
async function verifyCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, ['--conditions=arc-source', 'service/src/verify-cli.ts', ...args], { cwd: ROOT });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('npm run verify against the real service', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService({ DUCKDB_POOL_SIZE: '5' });
  });
  afterAll(async () => svc.close());

  it('passes a healthy service and says so check by check', async () => {
    const r = await verifyCli(['--url', svc.url, '--token', svc.token, '--pool-size', '5']);
    expect(r.stdout).toMatch(/PASS {2}health/);
    expect(r.stdout).toMatch(/PASS {2}select-1/);
    expect(r.stdout).toMatch(/PASS {2}concurrent-queries +10\/10 concurrent queries succeeded/);
    expect(r.stdout).toMatch(/PASS {2}pool-metrics +pool_size 5/);
    expect(r.stdout).toMatch(/PASS {2}runtime +pool_implementation DuckDBConnectionPool/);
    expect(r.code).toBe(0);
  });

  it('fails when the pool size is not the one expected', async () => {
    const r = await verifyCli(['--url', svc.url, '--token', svc.token, '--pool-size', '8', '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { ok: boolean; checks: Array<{ name: string; status: string; detail: string }> };
    expect(report.ok).toBe(false);
    expect(report.checks.find((c) => c.name === 'pool-metrics')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/expected 8/) as unknown });
  });

  it('fails when a forbidden module is loaded', async () => {
    const r = await verifyCli(['--url', svc.url, '--token', svc.token, '--forbidden', '**/node_modules/fastify/**']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL {2}runtime .*forbidden modules loaded: .*fastify/);
  });

  it('refuses a wrong token, and bad usage with exit code 2', async () => {
    const r = await verifyCli(['--url', svc.url, '--token', 'not-the-token']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL {2}select-1 +HTTP 401/);
    const usage = await verifyCli(['--url', svc.url]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/a token is required/);
  });
});

describe('npm run verify against a broken service', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService({ DUCKDB_POOL_SIZE: '1', DUCKDB_POOL_TIMEOUT: '0.3' });
  });
  afterAll(async () => svc.close());

  it('fails an exhausted pool: concurrent queries answer 503 and timeouts grow', async () => {
    const holder = new AbortController();
    const held = svc.query({ sql: SLOW_SQL }, { signal: holder.signal }).catch(() => undefined);
    await eventually(async () => (await svc.json<{ active_connections: number }>('/api/v1/metrics')).active_connections === 1);
    const r = await verifyCli(['--url', svc.url, '--token', svc.token]);
    holder.abort();
    await held;
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL {2}select-1 +HTTP 503: No available connections after 0\.3s/);
    expect(r.stdout).toMatch(/FAIL {2}concurrent-queries +0\/10 succeeded/);
    expect(r.stdout).toMatch(/FAIL {2}pool-metrics .*total_queries_timeout grew by 10/);
  });
});

describe('npm run verify against upstream Arc', () => {
  // Upstream Arc is another product; this small server answers with its documented shapes.
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.url === '/health') return send(200, { status: 'ok' });
      if (req.url === '/api/v1/query') return send(200, { success: true, columns: ['one'], data: [[1]], row_count: 1, error: null });
      if (req.url === '/api/v1/metrics/query-pool') {
        return send(200, { timestamp: new Date().toISOString(), pool: { pool_size: 5, active_connections: 0, idle_connections: 5, queue_depth: 0, total_queries_timeout: 0 }, connections: [] });
      }
      return send(404, { detail: 'Not Found' });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('reads the pool figures from the query-pool shape and skips what Arc does not expose', async () => {
    const r = await verifyCli(['--url', url, '--token', 'arc-token-123']);
    expect(r.stdout).toMatch(/PASS {2}pool-metrics .*\(\/api\/v1\/metrics\/query-pool\)/);
    expect(r.stdout).toMatch(/SKIP {2}runtime/);
    expect(r.code).toBe(0);
  });
});
