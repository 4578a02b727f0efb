import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export interface AppDeps {
  registry: Registry;
  /** Liveness: false only when the process cannot recover by itself. */
  live: () => boolean;
  /** Readiness: the caches are filled (a standby instance is ready to take over). */
  ready: () => boolean;
  /** Extra detail for /readyz (leader or standby). */
  role?: () => string;
  logger?: FastifyBaseLogger;
}

/** The operator's HTTP endpoints: /metrics, /healthz, /readyz. */
export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({
    ...(deps.logger === undefined ? { logger: false } : { loggerInstance: deps.logger }),
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.get('/metrics', async (_req, reply) => {
    const text = await deps.registry.metrics();
    return reply.type(deps.registry.contentType).send(text);
  });
  app.get('/healthz', async (_req, reply) => (deps.live() ? reply.send({ status: 'ok' }) : reply.code(503).send({ status: 'unhealthy' })));
  app.get('/readyz', async (_req, reply) => {
    const role = deps.role?.();
    if (deps.ready()) return reply.send({ status: 'ready', ...(role === undefined ? {} : { role }) });
    return reply.code(503).send({ status: 'not ready', reason: 'caches are still being filled' });
  });
  return app;
}
