import { runProcess } from '@arcops/common';
import pino from 'pino';
import { checkConfigPaths, loadConfig } from './config.ts';
import { trackLoadedModules } from './runtime.ts';

// Wiring only: read config, size libuv's threadpool before any I/O uses it, build, listen,
// close on SIGTERM.
await runProcess({
  name: 'arc-service',
  configure: () => {
    const config = loadConfig(process.env);
    checkConfigPaths(config);
    return config;
  },
  async start(config) {
    if (config.threadpoolSizeDefaulted) process.env.UV_THREADPOOL_SIZE = String(config.threadpoolSize);
    trackLoadedModules();

    const logger = pino({ level: config.logLevel, base: { component: 'arc-service' } });
    const { createService } = await import('./service.ts');
    const service = await createService(config, { logger });
    const address = await service.app.listen({ port: config.port, host: config.host });
    logger.info(
      { address, poolSize: config.poolSize, threadpool: config.threadpoolSize, demoData: config.demoData, dataDir: config.dataDir },
      'arc query service listening',
    );
    return { logger, stopping: { graceMs: config.shutdownGraceMs }, stop: () => service.close() };
  },
});
