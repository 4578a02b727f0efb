import { runProcess } from '@arcops/common';
import pino from 'pino';
import { loadConfig } from './config.ts';
import { createMetrics } from './metrics.ts';
import { createSidecar } from './sidecar.ts';

// Wiring only: read config, build, listen, stop on SIGTERM.
await runProcess({
  name: 'arc-sidecar',
  configure: () => loadConfig(process.env, process.cwd()),
  async start(config) {
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
    return { logger, stop: () => sidecar.close() };
  },
});
