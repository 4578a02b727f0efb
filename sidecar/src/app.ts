import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Verdict } from './checks.ts';
import type { Clock } from './clock.ts';
import type { ConditionSnapshot } from './condition.ts';
import type { SidecarConfig } from './config.ts';
import type { SidecarMetrics } from './metrics.ts';
import type { StatusView } from './monitor.ts';
import { http } from './node-http.ts';

export interface AppDeps {
  monitor: { status(): StatusView; readonly verdict: Verdict | undefined; readonly lastTickAt: number | undefined; readonly startedAt: number };
  metrics: SidecarMetrics;
  logger: Pick<Logger, 'error'>;
  clock: Clock;
  /** Present when the sidecar writes the pod condition. */
  condition?: { snapshot(): ConditionSnapshot } | undefined;
}

/** The sidecar's HTTP server: built by buildApp, listened to by the caller. */
export interface SidecarApp {
  readonly server: Server;
  /** Listens and resolves with the URL it answers on (`http://127.0.0.1:8081`). */
  listen(options: { port: number; host: string }): Promise<string>;
  /** Answers 503 to requests still arriving, then stops listening and waits for open requests. */
  close(): Promise<void>;
}

type AppConfig = Pick<SidecarConfig, 'probeIntervalMs' | 'probeTimeoutMs'>;

interface Answer {
  status: number;
  /** JSON unless `type` says otherwise. */
  body: unknown;
  type?: string;
}

/** How long without a finished probe tick before /healthz says the sidecar is stuck. */
export function stallAfterMs(config: AppConfig): number {
  return Math.max(30_000, 5 * config.probeIntervalMs + 2 * config.probeTimeoutMs);
}

function routes(config: AppConfig, deps: AppDeps): Record<string, () => Answer | Promise<Answer>> {
  const stallMs = stallAfterMs(config);
  return {
    '/status': () => ({ status: 200, body: { ...deps.monitor.status(), condition: deps.condition?.snapshot() ?? null } }),
    '/healthz': () => {
      const last = deps.monitor.lastTickAt ?? deps.monitor.startedAt;
      const ageMs = deps.clock.now() - last;
      if (ageMs > stallMs) {
        return { status: 503, body: { status: 'stalled', message: `no probe cycle finished for ${(ageMs / 1000).toFixed(0)}s` } };
      }
      return { status: 200, body: { status: 'ok' } };
    },
    '/readyz': () => {
      const v = deps.monitor.verdict;
      const body = {
        ready: v?.healthy === true,
        reason: v?.reason ?? null,
        message: v?.message ?? 'no verdict yet: waiting for the first answer from the service',
      };
      return { status: body.ready ? 200 : 503, body };
    },
    '/metrics': async () => ({ status: 200, body: await deps.metrics.registry.metrics(), type: deps.metrics.registry.contentType }),
  };
}

/**
 * The sidecar's HTTP API, on node:http (four small routes; a framework would double the
 * sidecar's memory, see docs/benchmarks.md):
 * - `GET /status`: the verdict, per-check detail, recent transitions, the pod condition writer.
 * - `GET /healthz`: liveness of the sidecar itself (its probe loop keeps ticking), never the pool.
 * - `GET /readyz`: 200 while the verdict is Healthy, 503 otherwise (and before the first one).
 * - `GET /metrics`: Prometheus text.
 * Each also answers HEAD; anything else is a 404 naming the routes.
 */
export function buildApp(config: AppConfig, deps: AppDeps): SidecarApp {
  const table = routes(config, deps);
  let closing = false;

  const send = (req: IncomingMessage, res: ServerResponse, a: Answer): void => {
    const text = a.type === undefined ? JSON.stringify(a.body) : String(a.body);
    res.writeHead(a.status, {
      'content-type': a.type ?? 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      // While closing, no connection is kept open for a next request.
      ...(closing ? { connection: 'close' } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = req.method === 'GET' || req.method === 'HEAD' ? table[path] : undefined;
    if (closing) {
      return send(req, res, { status: 503, body: { error: 'the sidecar is shutting down' } });
    }
    if (route === undefined) {
      return send(req, res, { status: 404, body: { error: `No route for ${req.method} ${path}; try /status, /healthz, /readyz or /metrics` } });
    }
    send(req, res, await route());
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      deps.logger.error({ err, url: req.url }, 'request failed');
      if (!res.headersSent) send(req, res, { status: 500, body: { error: err instanceof Error ? err.message : String(err) } });
      else res.destroy();
    });
  });

  return {
    server,
    listen: ({ port, host }) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const a = server.address() as AddressInfo;
          resolve(`http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
        });
      }),
    close: () =>
      new Promise((resolve, reject) => {
        closing = true;
        if (!server.listening) return resolve();
        server.close((err) => (err === undefined ? resolve() : reject(err)));
        server.closeIdleConnections();
      }),
  };
}
