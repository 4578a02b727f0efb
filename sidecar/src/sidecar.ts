import { type Clock, systemClock } from '@arcops/common';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { buildApp, type SidecarApp } from './app.ts';
import { ConditionWriter, type PodConditionApi } from './condition.ts';
import type { SidecarConfig } from './config.ts';
import { compileGlobs } from './glob.ts';
import { createMetrics, type SidecarMetrics } from './metrics.ts';
import { Monitor } from './monitor.ts';
import { createHttpProber, type Prober } from './probe.ts';
import { Scanner } from './scan.ts';

export interface SidecarDeps {
  logger: Logger;
  clock?: Clock;
  metrics?: SidecarMetrics;
  /** Kubernetes credentials for the pod condition; default: KUBECONFIG or in-cluster. */
  kubeConfig?: KubeConfig;
  /** Replaces the Kubernetes API used for the condition (unit tests). */
  conditionApi?: PodConditionApi;
  /** Replaces the HTTP prober (unit tests). */
  prober?: Prober;
  procRoot?: string;
}

export interface Sidecar {
  app: SidecarApp;
  monitor: Monitor;
  condition: ConditionWriter | undefined;
  metrics: SidecarMetrics;
  /** Starts probing (the app is listened to by the caller). */
  start(): void;
  /** Stops probing and writing, and closes the app. */
  close(): Promise<void>;
}

async function conditionApi(config: SidecarConfig, deps: SidecarDeps, namespace: string, name: string): Promise<PodConditionApi> {
  if (deps.conditionApi !== undefined) return deps.conditionApi;
  if (deps.kubeConfig === undefined && config.kubeconfigPath === undefined && config.kubernetesServiceHost !== undefined) {
    // In a pod: two plain HTTPS calls with the pod's ServiceAccount, no client library.
    const { inClusterPodConditionApi } = await import('./incluster.ts');
    return inClusterPodConditionApi(
      { host: config.kubernetesServiceHost, port: config.kubernetesServicePort, serviceAccountDir: config.serviceAccountDir },
      namespace,
      name,
    );
  }
  // Loaded only here: the Kubernetes client is most of the sidecar's memory.
  const kube = await import('./kube.ts');
  return kube.kubePodConditionApi(deps.kubeConfig ?? kube.loadKubeConfig(config.kubeconfigPath), namespace, name);
}

/** Builds every part of the sidecar from its config: everything but listening. */
export async function createSidecar(config: SidecarConfig, deps: SidecarDeps): Promise<Sidecar> {
  const clock = deps.clock ?? systemClock;
  const metrics = deps.metrics ?? createMetrics();
  const globs = compileGlobs(config.forbiddenModules);
  const prober =
    deps.prober ??
    createHttpProber({
      baseUrl: config.serviceUrl,
      token: config.apiToken,
      timeoutMs: config.probeTimeoutMs,
      canaryTimeoutMs: config.canaryTimeoutMs,
      observe: (endpoint, seconds, ok) => metrics.observeProbe(endpoint, seconds, ok),
    });
  const scanner = new Scanner({
    roots: config.scanRoots,
    globs,
    maxDepth: config.scanMaxDepth,
    maxEntries: config.scanMaxEntries,
    servicePort: config.servicePort,
    procRoot: deps.procRoot,
  });

  let condition: ConditionWriter | undefined;
  if (config.podName !== undefined && config.podNamespace !== undefined) {
    const api = await conditionApi(config, deps, config.podNamespace, config.podName);
    condition = new ConditionWriter({
      api,
      clock,
      logger: deps.logger.child({ part: 'condition' }),
      refreshMs: config.conditionRefreshMs,
      onWrite: (ok) => metrics.observeConditionWrite(ok),
    });
  }

  const monitor = new Monitor({
    config,
    globs,
    prober,
    scanner,
    clock,
    logger: deps.logger.child({ part: 'monitor' }),
    metrics,
    onVerdict: (v) => condition?.update(v),
  });
  const app = buildApp(config, { monitor, metrics, logger: deps.logger, clock, condition });

  let closing: Promise<void> | undefined;
  return {
    app,
    monitor,
    condition,
    metrics,
    start: () => monitor.start(),
    close: () => {
      closing ??= (async () => {
        await monitor.stop();
        condition?.close();
        await app.close();
      })();
      return closing;
    },
  };
}
