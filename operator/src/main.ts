import { inClusterCredentials } from '@arcops/common';
import pino from 'pino';
import { buildApp } from './app.ts';
import { loadConfig } from './config.ts';
import { ConfigError } from './errors.ts';
import { HttpKubeClient, inClusterAccess, loadKubeConfigAccess } from './kube.ts';
import { MemoryTrimmer, lastResortCollection, processMemory } from './memory.ts';
import { createMetrics } from './metrics.ts';
import { Operator } from './operator.ts';
import { systemClock } from './queue.ts';

// Wiring only: read config, build, listen, stop on SIGTERM (releasing the leader Lease).
let config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`arc-operator: ${err.message}\n`);
    process.exit(78);
  }
  throw err;
}

const logger = pino({ level: config.logLevel, base: { component: 'arc-operator' } });
// In a pod: the ServiceAccount's token and CA, no client library. Else a kubeconfig (client-node).
let access;
try {
  access = config.inCluster !== undefined ? inClusterAccess(inClusterCredentials(config.inCluster)) : await loadKubeConfigAccess(config.kubeconfig);
} catch (err) {
  process.stderr.write(`arc-operator: cannot load the Kubernetes credentials: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(78);
}
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

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  trimmer.stop();
  Promise.all([operator.stop({ release: true }), app.close()]).then(
    () => {
      client.close();
      logger.info('stopped');
      process.exit(0);
    },
    (err: unknown) => {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    },
  );
};
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));
