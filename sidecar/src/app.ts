import { routeServer } from '@arcops/common';
import type { Clock, RouteServer, Routes } from '@arcops/common';
import type { Logger } from 'pino';
import type { Verdict } from './checks.ts';
import type { ConditionSnapshot } from './condition.ts';
import type { SidecarConfig } from './config.ts';
import type { SidecarMetrics } from './metrics.ts';
import type { StatusView } from './monitor.ts';

export interface AppDeps {
  monitor: { status(): StatusView; readonly verdict: Verdict | undefined; readonly lastTickAt: number | undefined; readonly startedAt: number };
  metrics: SidecarMetrics;
  logger: Pick<Logger, 'error'>;
  clock: Clock;
  /** Present when the sidecar writes the pod condition. */
  condition?: { snapshot(): ConditionSnapshot } | undefined;
}

/** The sidecar's HTTP server: built by buildApp, listened to by the caller. */
export type SidecarApp = RouteServer;

type AppConfig = Pick<SidecarConfig, 'probeIntervalMs' | 'probeTimeoutMs'>;

/** How long without a finished probe tick before /healthz says the sidecar is stuck. */
export function stallAfterMs(config: AppConfig): number {
  return Math.max(30_000, 5 * config.probeIntervalMs + 2 * config.probeTimeoutMs);
}

function routes(config: AppConfig, deps: AppDeps): Routes {
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
  return routeServer(routes(config, deps), { name: 'sidecar', logger: deps.logger });
}
