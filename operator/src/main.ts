import { inClusterCredentials, runProcess, systemClock } from '@arcops/common';
import pino from 'pino';
import { buildApp } from './app.ts';
import { loadConfig } from './config.ts';
import type { OperatorConfig } from './config.ts';
import { ConfigError } from './errors.ts';
import { inClusterAccess, loadKubeConfigAccess } from './kube-access.ts';
import type { KubeAccess } from './kube-access.ts';
import { HttpKubeClient } from './kube.ts';
import { MemoryTrimmer, lastResortCollection, processMemory } from './memory.ts';
import { createMetrics } from './metrics.ts';
import { Operator } from './operator.ts';

// Wiring only: read config and credentials, build, listen, stop on SIGTERM (releasing the
// leader Lease).
await runProcess({
  name: 'arc-operator',
  async configure(): Promise<{ config: OperatorConfig; access: KubeAccess }> {
    const config = loadConfig(process.env);
    // In a pod: the ServiceAccount's token and CA, no client library. Else a kubeconfig (client-node).
    try {
      const access = config.inCluster !== undefined ? inClusterAccess(inClusterCredentials(config.inCluster)) : await loadKubeConfigAccess(config.kubeconfig);
      return { config, access };
    } catch (err) {
      throw new ConfigError([`cannot load the Kubernetes credentials: ${err instanceof Error ? err.message : String(err)}`]);
    }
  },
  async start({ config, access }) {
    const logger = pino({ level: config.logLevel, base: { component: 'arc-operator' } });
    const client = new HttpKubeClient(access, { userAgent: `arc-operator/${config.identity}` });
    const metrics = createMetrics();
    const operator = new Operator(config, { client, logger, metrics });
    const app = buildApp({
      registry: metrics.registry,
      live: () => true,
      ready: () => operator.isReady,
      role: () => (operator.isActing ? 'leader' : 'standby'),
      logger: logger.child({ part: 'http' }),
    });
    const trimmer = new MemoryTrimmer({
      collect: lastResortCollection(),
      reconciles: () => operator.reconcileTotal,
      memory: processMemory,
      clock: systemClock,
      logger,
    });

    await app.listen({ host: config.metricsHost, port: config.metricsPort });
    operator.start();
    trimmer.start();
    logger.info(
      {
        server: client.server,
        credentials: config.inCluster !== undefined ? 'in-cluster' : 'kubeconfig',
        identity: config.identity,
        leaderElection: config.leaderElection,
        lease: `${config.leaseNamespace}/${config.leaseName}`,
        namespaces: config.watchNamespaces.length === 0 ? 'all' : config.watchNamespaces,
        metricsPort: config.metricsPort,
      },
      'arc-operator started',
    );
    return {
      logger,
      async stop() {
        trimmer.stop();
        await Promise.all([operator.stop({ release: true }), app.close()]);
        client.close();
      },
    };
  },
});
