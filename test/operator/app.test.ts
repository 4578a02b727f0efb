import { describe, expect, it } from 'vitest';
import { buildApp } from '../../operator/src/app.ts';
import { createMetrics } from '../../operator/src/metrics.ts';

describe('the operator HTTP endpoints', () => {
  function app(state: { live: boolean; ready: boolean; leader: boolean }) {
    const metrics = createMetrics(undefined, { defaults: false });
    metrics.reconcileTotal.inc({ result: 'success' }, 3);
    metrics.leader.set(state.leader ? 1 : 0);
    return buildApp({ registry: metrics.registry, live: () => state.live, ready: () => state.ready, role: () => (state.leader ? 'leader' : 'standby') });
  }

  it('serves Prometheus metrics from its own registry', async () => {
    const res = await app({ live: true, ready: true, leader: true }).inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.body).toContain('arc_operator_reconcile_total{result="success"} 3');
    expect(res.body).toContain('arc_operator_leader 1');
    expect(res.body).toContain('# TYPE arc_operator_reconcile_duration_seconds histogram');
  });

  it.each([
    [{ live: true, ready: true, leader: true }, 200, { status: 'ready', role: 'leader' }],
    [{ live: true, ready: true, leader: false }, 200, { status: 'ready', role: 'standby' }],
    [{ live: true, ready: false, leader: false }, 503, { status: 'not ready', reason: 'caches are still being filled' }],
  ])('answers /readyz for %j with %i', async (state, code, body) => {
    const res = await app(state).inject({ url: '/readyz' });
    expect(res.statusCode).toBe(code);
    expect(res.json()).toEqual(body);
  });

  it.each([
    [true, 200],
    [false, 503],
  ])('answers /healthz (live %s) with %i', async (live, code) => {
    expect((await app({ live, ready: true, leader: true }).inject({ url: '/healthz' })).statusCode).toBe(code);
  });
});
