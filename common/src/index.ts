export * from './condition.ts';
export * from './pool-metrics.ts';
