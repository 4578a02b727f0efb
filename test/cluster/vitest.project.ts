// The vitest project for the cluster tier: tests that talk to the real local control plane
// (hack/cluster/up.sh). Referenced from the root vitest.config.ts (`projects`), or run alone:
//   npx vitest run --project cluster      |   npx vitest run -c test/cluster/vitest.project.ts
import { fileURLToPath } from 'node:url';
import { defineProject } from 'vitest/config';

export default defineProject({
  // Same as the root config: workspace packages resolve to their TypeScript sources.
  resolve: { conditions: ['arc-source'] },
  ssr: { resolve: { conditions: ['arc-source'] } },
  test: {
    name: 'cluster',
    // Paths below are relative to the repository root, wherever this file is loaded from.
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['test/cluster/**/*.test.ts', 'test/**/*.cluster.test.ts'],
    globalSetup: ['test/cluster/global-setup.ts'],
    environment: 'node',
    // One control plane on 2 cores: files run one after another; each has its own namespace.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
