import { routeServer } from '@arcops/common';
import type { RouteServer } from '@arcops/common';
import type { Registry } from 'prom-client';

export interface AppDeps {
  registry: Registry;
  /** Liveness: false only when the process cannot recover by itself. */
  live: () => boolean;
  /** Readiness: the caches are filled (a standby instance is ready to take over). */
  ready: () => boolean;
  /** Extra detail for /readyz (leader or standby). */
  role?: () => string;
  logger: { error(obj: object, msg: string): void };
}

/**
 * The operator's HTTP endpoints, on node:http (three small routes; fastify and the undici that
 * an ES-module import of node:http loads cost the operator ~20 MB of RSS, ADR 0009):
 * - `GET /metrics`: Prometheus text from the operator's own registry.
 * - `GET /healthz`: 200 while the process can go on, 503 otherwise.
 * - `GET /readyz`: 200 once the caches are filled, with the role (leader or standby).
 */
export function buildApp(deps: AppDeps): RouteServer {
  return routeServer(
    {
      '/metrics': async () => ({ status: 200, body: await deps.registry.metrics(), type: deps.registry.contentType }),
      '/healthz': () => (deps.live() ? { status: 200, body: { status: 'ok' } } : { status: 503, body: { status: 'unhealthy' } }),
      '/readyz': () => {
        if (!deps.ready()) return { status: 503, body: { status: 'not ready', reason: 'caches are still being filled' } };
        const role = deps.role?.();
        return { status: 200, body: { status: 'ready', ...(role === undefined ? {} : { role }) } };
      },
    },
    { name: 'operator', logger: deps.logger },
  );
}
