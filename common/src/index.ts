export * from './condition.ts';
export * from './pool-metrics.ts';
export * from './pool-errors.ts';
export * from './env.ts';
export * from './incluster.ts';
export * from './node-http.ts';
export * from './clock.ts';
