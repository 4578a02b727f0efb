import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Verdict } from './checks.ts';
import type { Clock } from './clock.ts';
import type { ConditionSnapshot } from './condition.ts';
import type { SidecarConfig } from './config.ts';
import type { SidecarMetrics } from './metrics.ts';
import type { StatusView } from './monitor.ts';

export interface AppDeps {
  monitor: { status(): StatusView; readonly verdict: Verdict | undefined; readonly lastTickAt: number | undefined; readonly startedAt: number };
  metrics: SidecarMetrics;
  logger: FastifyBaseLogger;
  clock: Clock;
  /** Present when the sidecar writes the pod condition. */
  condition?: { snapshot(): ConditionSnapshot } | undefined;
}

type AppConfig = Pick<SidecarConfig, 'probeIntervalMs' | 'probeTimeoutMs'>;

/** How long without a finished probe tick before /healthz says the sidecar is stuck. */
export function stallAfterMs(config: AppConfig): number {
  return Math.max(30_000, 5 * config.probeIntervalMs + 2 * config.probeTimeoutMs);
}

/**
 * The sidecar's HTTP API:
 * - `GET /status`: the verdict, per-check detail, recent transitions, the pod condition writer.
 * - `GET /healthz`: liveness of the sidecar itself (its probe loop keeps ticking), never the pool.
 * - `GET /readyz`: 200 while the verdict is Healthy, 503 otherwise (and before the first one).
 * - `GET /metrics`: Prometheus text.
 */
export function buildApp(config: AppConfig, deps: AppDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  });
  const stallMs = stallAfterMs(config);

  app.get('/status', async () => ({ ...deps.monitor.status(), condition: deps.condition?.snapshot() ?? null }));

  app.get('/healthz', async (_req, reply) => {
    const last = deps.monitor.lastTickAt ?? deps.monitor.startedAt;
    const ageMs = deps.clock.now() - last;
    if (ageMs > stallMs) {
      return reply.code(503).send({ status: 'stalled', message: `no probe cycle finished for ${(ageMs / 1000).toFixed(0)}s` });
    }
    return { status: 'ok' };
  });

  app.get('/readyz', async (_req, reply) => {
    const v = deps.monitor.verdict;
    const body = {
      ready: v?.healthy === true,
      reason: v?.reason ?? null,
      message: v?.message ?? 'no verdict yet: waiting for the first answer from the service',
    };
    return reply.code(body.ready ? 200 : 503).send(body);
  });

  app.get('/metrics', async (_req, reply) => {
    const text = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(text);
  });

  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: `No route for ${req.method} ${req.url.split('?')[0]}; try /status, /healthz, /readyz or /metrics` }),
  );

  return app;
}
