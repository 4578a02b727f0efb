// The operator's HTTP endpoints on a real socket.
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../operator/src/app.ts';
import { createMetrics } from '../../operator/src/metrics.ts';
import { silentLogger } from './fixtures.ts';

describe('the operator HTTP endpoints', () => {
  const open: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((close) => close()));
  });

  async function serve(state: { live: boolean; ready: boolean; leader: boolean }): Promise<string> {
    const metrics = createMetrics(undefined, { defaults: false });
    metrics.reconcileTotal.inc({ result: 'success' }, 3);
    metrics.leader.set(state.leader ? 1 : 0);
    const app = buildApp({ registry: metrics.registry, live: () => state.live, ready: () => state.ready, role: () => (state.leader ? 'leader' : 'standby'), logger: silentLogger });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    open.push(() => app.close());
    return url;
  }

  it('serves Prometheus metrics from its own registry', async () => {
    const res = await fetch(`${await serve({ live: true, ready: true, leader: true })}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const body = await res.text();
    expect(body).toContain('arc_operator_reconcile_total{result="success"} 3');
    expect(body).toContain('arc_operator_leader 1');
    expect(body).toContain('# TYPE arc_operator_reconcile_duration_seconds histogram');
  });

  it.each([
    [{ live: true, ready: true, leader: true }, 200, { status: 'ready', role: 'leader' }],
    [{ live: true, ready: true, leader: false }, 200, { status: 'ready', role: 'standby' }],
    [{ live: true, ready: false, leader: false }, 503, { status: 'not ready', reason: 'caches are still being filled' }],
  ])('answers /readyz for %j with %i', async (state, code, body) => {
    const res = await fetch(`${await serve(state)}/readyz`);
    expect(res.status).toBe(code);
    expect(await res.json()).toEqual(body);
  });

  it.each([
    [true, 200],
    [false, 503],
  ])('answers /healthz (live %s) with %i', async (live, code) => {
    expect((await fetch(`${await serve({ live, ready: true, leader: true })}/healthz`)).status).toBe(code);
  });

  it('answers an unknown path or method with a 404 that names the routes', async () => {
    const url = await serve({ live: true, ready: true, leader: true });
    const res = await fetch(`${url}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'No route for GET /nope; try /metrics, /healthz or /readyz' });
    expect((await fetch(`${url}/metrics`, { method: 'POST' })).status).toBe(404);
  });
});
