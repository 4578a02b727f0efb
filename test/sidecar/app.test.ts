// The sidecar's HTTP server (node:http, no framework) on a real socket: what a kubelet probe, a
// Prometheus scrape or a curl sees, including HEAD, unknown routes, a failing handler and
// shutdown. The verdict comes from a stand-in monitor; the full sidecar is in sidecar.test.ts.
import { Agent, request } from 'node:http';
import pino from 'pino';
import { Gauge, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, type SidecarApp } from '../../sidecar/src/app.ts';
import type { Verdict } from '../../sidecar/src/checks.ts';
import type { StatusView } from '../../sidecar/src/monitor.ts';
import { createMetrics } from '../../sidecar/src/metrics.ts';
import { FakeClock } from '../support/fake-clock.ts';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(url: string, method: string, path: string, agent?: Agent): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const healthy: Verdict = { healthy: true, reason: 'Healthy', message: 'every check passes' } as Verdict;

function world(options: { verdict?: Verdict; statusThrows?: boolean; metrics?: ReturnType<typeof createMetrics> } = {}) {
  const clock = new FakeClock();
  clock.set(Date.parse('2026-11-28T00:00:00Z'));
  const monitor = {
    verdict: options.verdict,
    lastTickAt: clock.now() as number | undefined,
    startedAt: clock.now(),
    status: (): StatusView => {
      if (options.statusThrows === true) throw new Error('status exploded');
      return { healthy: options.verdict?.healthy ?? false, reason: options.verdict?.reason ?? 'ServiceUnreachable' } as StatusView;
    },
  };
  const metrics = options.metrics ?? createMetrics();
  metrics.observeVerdict(options.verdict);
  const app = buildApp({ probeIntervalMs: 5000, probeTimeoutMs: 2000 }, { monitor, metrics, logger: pino({ level: 'silent' }), clock });
  return { app, clock, monitor };
}

let open: SidecarApp | undefined;
afterEach(async () => {
  await open?.close();
  open = undefined;
});

async function listen(app: SidecarApp): Promise<string> {
  open = app;
  return app.listen({ port: 0, host: '127.0.0.1' });
}

describe('the sidecar HTTP server', () => {
  it('answers the four routes with JSON or Prometheus text, and HEAD without a body', async () => {
    const { app } = world({ verdict: healthy });
    const url = await listen(app);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const status = await send(url, 'GET', '/status?pretty=1');
    expect(status.status).toBe(200);
    expect(status.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(status.body)).toEqual({ healthy: true, reason: 'Healthy', condition: null });

    expect(await send(url, 'GET', '/readyz')).toMatchObject({ status: 200, body: JSON.stringify({ ready: true, reason: 'Healthy', message: 'every check passes' }) });
    expect(await send(url, 'GET', '/healthz')).toMatchObject({ status: 200, body: '{"status":"ok"}' });

    const metrics = await send(url, 'GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(metrics.body).toContain('arc_sidecar_healthy 1');

    const head = await send(url, 'HEAD', '/readyz');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
  });

  it('says not ready (503) before the first verdict, and stalled when the probe loop stops ticking', async () => {
    const { app, clock } = world();
    const url = await listen(app);
    expect(await send(url, 'GET', '/readyz')).toMatchObject({ status: 503, body: expect.stringContaining('"ready":false') as unknown });
    await clock.advance(31_000);
    const stalled = await send(url, 'GET', '/healthz');
    expect(stalled.status).toBe(503);
    expect(JSON.parse(stalled.body)).toEqual({ status: 'stalled', message: 'no probe cycle finished for 31s' });
  });

  it('answers 404 naming the routes for an unknown path or another method, and 500 when a handler fails', async () => {
    const { app } = world({ statusThrows: true });
    const url = await listen(app);
    const nope = await send(url, 'GET', '/nope?x=1');
    expect(nope.status).toBe(404);
    expect(JSON.parse(nope.body)).toEqual({ error: 'No route for GET /nope; try /status, /healthz, /readyz or /metrics' });
    expect((await send(url, 'POST', '/status')).status).toBe(404);
    const failed = await send(url, 'GET', '/status');
    expect(failed.status).toBe(500);
    expect(JSON.parse(failed.body)).toEqual({ error: 'status exploded' });
  });

  it('on close, finishes a request in flight with Connection: close, then refuses new connections', async () => {
    // A scrape that is still being collected when close() is called.
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const registry = new Registry();
    new Gauge({ name: 'arc_sidecar_test_slow', help: 'collected slowly', registers: [registry], collect: () => gate });
    const { app } = world({ verdict: healthy, metrics: createMetrics({ registry }) });
    const url = await listen(app);
    const agent = new Agent({ keepAlive: true });
    try {
      expect((await send(url, 'GET', '/healthz', agent)).status).toBe(200); // leaves an idle keep-alive connection
      const scrape = send(url, 'GET', '/metrics', agent);
      await new Promise((r) => setTimeout(r, 100));
      let closed = false;
      const closing = app.close().then(() => (closed = true));
      await new Promise((r) => setTimeout(r, 100));
      expect(closed).toBe(false); // waits for the scrape
      release();
      const answer = await scrape;
      expect(answer.status).toBe(200);
      expect(answer.headers.connection).toBe('close');
      await closing;
      open = undefined;
      await expect(send(url, 'GET', '/healthz')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      agent.destroy();
    }
  });
});
