export { buildApp, parseQueryBody } from './app.ts';
export { TokenAuth, tokenFromHeaders } from './auth.ts';
export { loadConfig, type ServiceConfig } from './config.ts';
export * from './errors.ts';
export { DuckDBConnectionPool, Lease, type ConnectionFactory, type PoolOptions } from './pool.ts';
export { QueryService } from './query.ts';
export { createService, type Service } from './service.ts';
