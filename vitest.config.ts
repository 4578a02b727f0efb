import { defineConfig } from 'vitest/config';
import cluster from './test/cluster/vitest.project.ts';

// Tiers: `unit` (pure logic, plus the real DuckDB and real HTTP sockets on loopback),
// `cluster` (a real kube-apiserver, see test/cluster/vitest.project.ts) and `real-node` (our
// images on a real kubelet, test/e2e/real-node.e2e.test.ts). real-node has a group of its own
// (sequence.groupOrder 1), so no other tier runs beside it; vitest puts projects whose files run
// one at a time (cluster; unit too where there is a single worker, as on 2 cores) in a last group.
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
          exclude: ['test/cluster/**', 'test/**/*.cluster.test.ts', 'test/**/*.e2e.test.ts', 'node_modules/**'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      cluster,
      {
        extends: true,
        test: {
          name: 'real-node',
          include: ['test/**/*.e2e.test.ts'],
          sequence: { groupOrder: 1 },
          testTimeout: 55 * 60_000,
        },
      },
    ],
  },
});
