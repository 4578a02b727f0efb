import { defineConfig } from 'vitest/config';
import cluster from './test/cluster/vitest.project.ts';

// Tiers: `unit` (pure logic, plus the real DuckDB and real HTTP sockets on loopback) and
// `cluster` (a real kube-apiserver, see test/cluster/vitest.project.ts).
export default defineConfig({
  resolve: { conditions: ['arc-source'] },
  ssr: { resolve: { conditions: ['arc-source'] } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/cluster/**', 'test/**/*.cluster.test.ts', 'node_modules/**'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      cluster,
    ],
  },
});
