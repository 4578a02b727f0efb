// The sidecar against the real query service (real DuckDB, real HTTP on loopback): each
// problem is made for real and the verdict is read from the sidecar's own HTTP API.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startServiceThatLosesConnections } from '../support/lossy-service.ts';
import { type RunningService, SLOW_SQL, startService } from '../support/service.ts';
import { closeServiceForcefully, FAST, type RunningSidecar, startSidecar, waitForReason, waitForStatus } from '../support/sidecar.ts';
import { startServiceProcess } from '../support/sidecar-service-process.ts';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const tmp = mkdtempSync(join(tmpdir(), 'arc-sidecar-it-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function service(env: Record<string, string>): Promise<RunningService> {
  const svc = await startService(env);
  cleanups.push(() => closeServiceForcefully(svc.service, () => svc.close()));
  return svc;
}

async function sidecarFor(url: string, token: string, env: Record<string, string> = {}): Promise<RunningSidecar> {
  const sc = await startSidecar({ ARC_SERVICE_URL: url, ARC_API_TOKEN: token, ...FAST, ...env });
  cleanups.push(() => sc.close());
  return sc;
}

/** Occupies the whole pool with queries that run until aborted, plus callers that keep queueing. */
function exhaust(svc: RunningService, holders: number, callers: number): { release: () => Promise<void> } {
  const abort = new AbortController();
  const held = Array.from({ length: holders }, () =>
    svc.query({ sql: SLOW_SQL }, { signal: abort.signal }).then((r) => r.text(), () => ''),
  );
  const loops = Array.from({ length: callers }, async () => {
    while (!abort.signal.aborted) {
      await svc.query({ sql: 'SELECT 1' }, { signal: abort.signal }).then((r) => r.text(), () => '');
    }
  });
  const release = async (): Promise<void> => {
    abort.abort();
    await Promise.all([...held, ...loops]);
  };
  cleanups.push(release);
  return { release };
}

describe('PoolExhausted', () => {
  it('is reported when every connection is held and callers queue past POOL_EXHAUSTED_SECONDS, and clears after recovery + hysteresis', async () => {
    const svc = await service({ DUCKDB_POOL_SIZE: '1', DUCKDB_POOL_TIMEOUT: '2' });
    const sc = await sidecarFor(svc.url, svc.token, { PENDING_TIMEOUTS_WINDOW_SECONDS: '1' });
    await waitForReason(sc, 'Healthy');

    const started = Date.now();
    const load = exhaust(svc, 1, 3);
    const sick = await waitForReason(sc, 'PoolExhausted');
    expect(sick.healthy).toBe(false);
    expect(sick.message).toMatch(/all connections busy \(1 of 1\) with \d+ callers queued for 1\.\ds|the canary SELECT 1 was refused/);
    // Not before the pool had been saturated for POOL_EXHAUSTED_SECONDS (1 s).
    expect(Date.parse(sick.since) - started).toBeGreaterThanOrEqual(950);
    expect((await sc.get('/readyz')).status).toBe(503);
    expect((await sc.get('/healthz')).status).toBe(200);

    await load.release();
    const released = Date.now();
    const recovering = await waitForStatus(sc, (s) => s.recovering !== null, 'the recovery clock to start');
    expect(recovering.reason).toBe('PoolExhausted');
    const healthy = await waitForReason(sc, 'Healthy');
    // Hysteresis: Healthy only once every check was clear for RECOVERY_CLEAR_SECONDS (1 s).
    expect(Date.parse(healthy.since) - released).toBeGreaterThanOrEqual(950);
    expect(healthy.transitions.map((t) => `${t.from}->${t.to}`)).toEqual(['None->Healthy', 'Healthy->PoolExhausted', 'PoolExhausted->Healthy']);
    expect((await sc.get('/readyz')).status).toBe(200);
    expect(await sc.transitions()).toEqual({ 'None->Healthy': 1, 'Healthy->PoolExhausted': 1, 'PoolExhausted->Healthy': 1 });
  });

  it('is reported from the canary alone: SELECT 1 refused at the wait deadline twice in a row', async () => {
    const svc = await service({ DUCKDB_POOL_SIZE: '1', DUCKDB_POOL_TIMEOUT: '0.5' });
    // Saturation alone would take 10 minutes here: only the canary can tell.
    const sc = await sidecarFor(svc.url, svc.token, { POOL_EXHAUSTED_SECONDS: '600', PENDING_TIMEOUTS_MAX_COUNT: '1000000', OLDEST_WAIT_MAX_SECONDS: '600' });
    await waitForReason(sc, 'Healthy');
    exhaust(svc, 1, 0);
    const sick = await waitForReason(sc, 'PoolExhausted');
    expect(sick.message).toBe('the canary SELECT 1 was refused 2 times in a row: No available connections after 0.5s');
    expect(sick.checks.poolExhausted).toMatchObject({ status: 'failing', canaryFailuresInARow: 2, lastCanary: 'wait-deadline' });
  });
});

describe('PendingTimeouts', () => {
  // Exhaustion detection is turned off in these two, so the timeouts are what is reported.
  const exhaustionOff = { POOL_EXHAUSTED_SECONDS: '600', POOL_EXHAUSTED_CANARY_FAILURES: '1000' };

  it('is reported when more callers time out within the window than allowed, and clears once the window slides past', async () => {
    const svc = await service({ DUCKDB_POOL_SIZE: '1', DUCKDB_POOL_TIMEOUT: '0.3' });
    const sc = await sidecarFor(svc.url, svc.token, { ...exhaustionOff, PENDING_TIMEOUTS_MAX_COUNT: '3', PENDING_TIMEOUTS_WINDOW_SECONDS: '3' });
    await waitForReason(sc, 'Healthy');
    const load = exhaust(svc, 1, 2);
    const sick = await waitForReason(sc, 'PendingTimeouts');
    expect(sick.message).toMatch(/^\d+ callers gave up waiting for a connection in the last 3\.0s \(more than 3\)$/);
    const m = await svc.json<{ total_queries_timeout: number }>('/api/v1/metrics');
    expect(m.total_queries_timeout).toBeGreaterThan(3);
    await load.release();
    await waitForReason(sc, 'Healthy', 30_000);
  });

  it('is reported when the oldest caller has waited longer than OLDEST_WAIT_MAX_SECONDS', async () => {
    const svc = await service({ DUCKDB_POOL_SIZE: '1', DUCKDB_POOL_TIMEOUT: '30' });
    const sc = await sidecarFor(svc.url, svc.token, { ...exhaustionOff, OLDEST_WAIT_MAX_SECONDS: '1' });
    await waitForReason(sc, 'Healthy');
    exhaust(svc, 1, 1);
    const sick = await waitForReason(sc, 'PendingTimeouts');
    expect(sick.message).toMatch(/^the oldest caller has waited \d+\.\ds for a connection \(limit 1\.0s\)$/);
  });
});

describe('PoolCapacityLost', () => {
  it('is reported when the pool really loses a connection (recreation keeps failing), and clears once it is back', async () => {
    const svc = await startServiceThatLosesConnections();
    cleanups.push(() => closeServiceForcefully(svc.service, () => svc.close()));
    const sc = await sidecarFor(svc.url, svc.token);
    await waitForReason(sc, 'Healthy');

    await svc.loseOneConnection();
    expect(await svc.metrics()).toMatchObject({ pool_size: 2, unavailable_connections: 1 });
    const sick = await waitForReason(sc, 'PoolCapacityLost');
    expect(sick.message).toMatch(/^only 1 of 2 connections live for 1\.\ds$/);
    // The pool still serves with the connection it has left: the sidecar is not fooled by that.
    expect((await fetch(`${svc.url}/ready`)).status).toBe(200);

    svc.heal();
    await waitForReason(sc, 'Healthy', 30_000);
    expect(await svc.metrics()).toMatchObject({ unavailable_connections: 0, idle_connections: 2 });
  });
});

describe('ForbiddenModule', () => {
  it('is reported within one probe interval of a forbidden file appearing in the scanned tree, and clears when it is removed', async () => {
    const svc = await service({ DUCKDB_POOL_SIZE: '1' });
    const root = join(tmp, 'app');
    mkdirSync(join(root, 'dist'), { recursive: true });
    writeFileSync(join(root, 'dist/index.js'), '');
    const sc = await sidecarFor(svc.url, svc.token, { SCAN_ROOTS: root, PROBE_INTERVAL_SECONDS: '0.5' });
    await waitForReason(sc, 'Healthy');

    const before = (await sc.status()).ticks;
    writeFileSync(join(root, 'dist/duckdb_pool_simple.js'), 'module.exports = {}');
    const sick = await waitForReason(sc, 'ForbiddenModule');
    // The tick running while the file was written may have scanned just before; the next one sees it.
    expect(sick.ticks - before).toBeLessThanOrEqual(2);
    expect(sick.message).toBe(`forbidden file in the service's tree: ${root}/dist/duckdb_pool_simple.js`);
    expect(sick.checks.forbiddenModule).toMatchObject({ status: 'failing', filesFound: [`${root}/dist/duckdb_pool_simple.js`] });

    rmSync(join(root, 'dist/duckdb_pool_simple.js'));
    await waitForReason(sc, 'Healthy');

    mkdirSync(join(root, 'api/__pycache__'), { recursive: true });
    writeFileSync(join(root, 'api/__pycache__/duckdb_pool_simple.cpython-312.pyc'), '');
    expect((await waitForReason(sc, 'ForbiddenModule')).message).toContain('api/__pycache__/duckdb_pool_simple.cpython-312.pyc');
  });

  it('is reported when the running service has loaded a forbidden module (GET /api/v1/runtime)', async () => {
    const dir = join(tmp, 'stale-build');
    mkdirSync(dir, { recursive: true });
    const stale = join(dir, 'duckdb_pool_simple.cjs');
    writeFileSync(stale, 'module.exports = { stale: true };\n');
    const svc = await startServiceProcess({ nodeArgs: ['--require', stale], env: { DUCKDB_POOL_SIZE: '1' } });
    cleanups.push(() => svc.stop());
    const sc = await sidecarFor(svc.url, svc.token);
    const sick = await waitForReason(sc, 'ForbiddenModule');
    expect(sick.message).toBe(`the service has loaded ${stale}`);
  });
});

describe('ServiceUnreachable', () => {
  it('is reported when the service process stops answering for SERVICE_UNREACHABLE_SECONDS; the sidecar itself stays alive', async () => {
    const svc = await startServiceProcess({ env: { DUCKDB_POOL_SIZE: '1' } });
    cleanups.push(() => svc.stop());
    const sc = await sidecarFor(svc.url, svc.token);
    await waitForReason(sc, 'Healthy');

    await svc.stop();
    const sick = await waitForReason(sc, 'ServiceUnreachable');
    // Declared only after SERVICE_UNREACHABLE_SECONDS (1 s) without a usable answer.
    expect(Date.parse(sick.since) - Date.parse(sick.service.lastAnswerAt!)).toBeGreaterThanOrEqual(1000);
    expect(sick.message).toMatch(/^no usable answer for \d+\.\ds: no answer from http:\/\/127\.0\.0\.1:\d+\/api\/v1\/metrics: ECONNREFUSED/);
    expect((await sc.get('/readyz')).status).toBe(503);
    expect((await sc.get('/healthz')).status).toBe(200);
  });

  it('says so at start when the service never answers, and reports no verdict before the deadline', async () => {
    const nothing = createServer();
    await new Promise<void>((r) => nothing.listen(0, '127.0.0.1', r));
    const port = (nothing.address() as AddressInfo).port;
    await new Promise((r) => nothing.close(r));
    const sc = await sidecarFor(`http://127.0.0.1:${port}`, 'x', { SERVICE_UNREACHABLE_SECONDS: '2' });
    const early = await sc.status();
    expect(early).toMatchObject({ settled: false, healthy: false });
    expect((await sc.get('/readyz')).status).toBe(503);
    const sick = await waitForReason(sc, 'ServiceUnreachable');
    expect(sick.message).toMatch(/^no answer yet: no answer from .*ECONNREFUSED/);
    expect(sick.transitions.map((t) => `${t.from}->${t.to}`)).toEqual(['None->ServiceUnreachable']);
  });
});

describe('the sidecar HTTP API', () => {
  it('serves /status, /healthz, /readyz and Prometheus metrics named arc_sidecar_*', async () => {
    const svc = await service({ DUCKDB_POOL_SIZE: '2' });
    const sc = await sidecarFor(svc.url, svc.token);
    const s = await waitForReason(sc, 'Healthy');
    expect(Object.keys(s.checks).sort()).toEqual(['forbiddenModule', 'pendingTimeouts', 'poolCapacity', 'poolExhausted', 'serviceReachable']);
    expect(s).toMatchObject({ healthy: true, settled: true, service: { url: svc.url, shape: 'flat' }, condition: null });
    expect(new Date(s.since).toISOString()).toBe(s.since);
    expect(JSON.parse((await sc.get('/healthz')).body)).toEqual({ status: 'ok' });
    expect(JSON.parse((await sc.get('/readyz')).body)).toEqual({ ready: true, reason: 'Healthy', message: 'every check passes' });
    const metrics = (await sc.get('/metrics')).body;
    for (const name of [
      'arc_sidecar_probe_duration_seconds_bucket{le="0.005",endpoint="metrics",outcome="ok"}',
      'arc_sidecar_probe_duration_seconds_count{endpoint="canary",outcome="ok"}',
      'arc_sidecar_check_failing{check="poolExhausted"} 0',
      'arc_sidecar_check_status{check="poolCapacity",status="ok"} 1',
      'arc_sidecar_healthy 1',
      'arc_sidecar_verdict{reason="Healthy"} 1',
      'arc_sidecar_transitions_total{from="None",to="Healthy"} 1',
    ]) {
      expect(metrics).toContain(name);
    }
    expect([...metrics.matchAll(/^(\w+)[{ ]/gm)].map((m) => m[1]).every((n) => n!.startsWith('arc_sidecar_'))).toBe(true);
    expect((await sc.get('/nope')).status).toBe(404);
  });
});
