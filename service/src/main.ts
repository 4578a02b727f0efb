import pino from 'pino';
import { loadConfig } from './config.ts';
import { ConfigError } from './errors.ts';
import { trackLoadedModules } from './runtime.ts';

// Wiring only: read config, size libuv's threadpool before any I/O uses it, build, listen,
// close on SIGTERM.
let config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`arc-service: ${err.message}\n`);
    process.exit(78);
  }
  throw err;
}
if (config.threadpoolSizeDefaulted) process.env.UV_THREADPOOL_SIZE = String(config.threadpoolSize);
trackLoadedModules();

const logger = pino({ level: config.logLevel, base: { component: 'arc-service' } });
const { createService } = await import('./service.ts');
// A folder or database file that cannot be used is bad configuration too: exit 78, one line.
const service = await createService(config, { logger }).catch((err: unknown) => {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`arc-service: ${err.message}\n`);
  process.exit(78);
});
const address = await service.app.listen({ port: config.port, host: config.host });
logger.info(
  { address, poolSize: config.poolSize, threadpool: config.threadpoolSize, demoData: config.demoData, dataDir: config.dataDir },
  'arc query service listening',
);

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down');
  service.close().then(
    () => {
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
