import pino from 'pino';
import { loadConfig } from './config.ts';
import { ConfigError } from './errors.ts';
import { createMetrics } from './metrics.ts';
import { createSidecar } from './sidecar.ts';

// Wiring only: read config, build, listen, stop on SIGTERM.
let config;
try {
  config = loadConfig(process.env, process.cwd());
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`arc-sidecar: ${err.message}\n`);
    process.exit(78);
  }
  throw err;
}

const logger = pino({ level: config.logLevel, base: { component: 'arc-sidecar' } });
const sidecar = await createSidecar(config, { logger, metrics: createMetrics({ processMetrics: true }) });
const address = await sidecar.app.listen({ port: config.port, host: config.host });
sidecar.start();
logger.info(
  {
    address,
    service: config.serviceUrl,
    intervalSeconds: config.probeIntervalMs / 1000,
    scanRoots: config.scanRoots.map((r) => r.spec),
    podCondition: config.podName === undefined ? null : `${config.podNamespace}/${config.podName}`,
  },
  'arc sidecar listening',
);

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  sidecar.close().then(
    () => process.exit(0),
    (err: unknown) => {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    },
  );
};
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));
