// The environment the operator writes into the pod template, read back by the service's and
// the sidecar's own config loaders: a renamed variable on either side fails here, not in a pod.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Container, V1Deployment } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { desiredDeployment } from '../../operator/src/desired.ts';
import { resolveSpec } from '../../operator/src/spec.ts';
import type { ArcDeploymentSpec } from '../../operator/src/types.ts';
import { loadConfig as loadServiceConfig } from '../../service/src/config.ts';
import { loadConfig as loadSidecarConfig } from '../../sidecar/src/config.ts';
import { arcDeployment } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'arc-contract-'));
const tokenFile = join(dir, 'tokens');
writeFileSync(tokenFile, 'first-token-123\nsecond-token-456\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A container's env as the kubelet would give it: fieldRefs resolved, the token file moved here. */
function podEnv(spec: Partial<ArcDeploymentSpec>, containerName: string): Record<string, string> {
  const arcd = arcDeployment(spec);
  const d = desiredDeployment(arcd, resolveSpec(arcd.spec)) as V1Deployment;
  const c = d.spec?.template.spec?.containers.find((x: V1Container) => x.name === containerName);
  const env: Record<string, string> = {};
  for (const e of c?.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = 'demo-7d9f-abcde';
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = 'team-a';
  }
  if (env['ARC_API_TOKENS_FILE'] !== undefined) env['ARC_API_TOKENS_FILE'] = tokenFile;
  if (env['ARC_API_TOKEN_FILE'] !== undefined) env['ARC_API_TOKEN_FILE'] = tokenFile;
  return env;
}

describe('the service reads what the operator writes', () => {
  it.each<[string, Partial<ArcDeploymentSpec>]>([
    ['defaults', {}],
    ['a tuned pool and data', { pool: { size: 12, waitTimeoutSeconds: 2.5, maxQueue: 40, largeResultRows: 100, queryTimeoutSeconds: 30, memoryLimit: '1GB', threads: 2 }, data: { existingClaim: 'x', mountPath: '/srv/data' } }],
  ])('with %s', (_what, spec) => {
    const s = resolveSpec(arcDeployment(spec).spec);
    const config = loadServiceConfig(podEnv(spec, 'arc'));
    expect(config).toMatchObject({
      port: 8000,
      host: '0.0.0.0',
      apiTokens: ['first-token-123', 'second-token-456'],
      duckdbPath: ':memory:',
      poolSize: s.pool.size,
      poolTimeoutMs: s.pool.waitTimeoutSeconds * 1000,
      maxQueue: s.pool.maxQueue,
      largeResultRows: s.pool.largeResultRows,
      queryTimeoutMs: s.pool.queryTimeoutSeconds * 1000,
      memoryLimit: s.pool.memoryLimit,
      threads: s.pool.threads,
      threadpoolSize: s.pool.size + 4,
      threadpoolSizeDefaulted: false,
      dataDir: s.data?.mountPath,
      tempDir: '/tmp/arc-duckdb',
    });
  });
});

describe('the sidecar reads what the operator writes', () => {
  it.each<[string, Partial<ArcDeploymentSpec>]>([
    ['defaults', {}],
    [
      'tuned thresholds',
      {
        probe: {
          intervalSeconds: 3,
          timeoutSeconds: 1,
          canaryTimeoutSeconds: 20,
          exhaustedSeconds: 9,
          exhaustedCanaryFailures: 4,
          pendingTimeoutsMaxCount: 7,
          pendingTimeoutsWindowSeconds: 30,
          oldestWaitMaxSeconds: 2.5,
          capacityLostSeconds: 12,
          unreachableSeconds: 6,
          recoverySeconds: 8,
          scanIntervalSeconds: 45,
          scanRoots: ['proc:auto', '/app'],
        },
        forbiddenModules: ['**/bad_pool.py'],
      },
    ],
  ])('with %s', (_what, spec) => {
    const s = resolveSpec(arcDeployment(spec).spec);
    const config = loadSidecarConfig(podEnv(spec, 'sidecar'));
    expect(config).toMatchObject({
      serviceUrl: 'http://127.0.0.1:8000',
      servicePort: 8000,
      apiToken: 'first-token-123',
      port: 8081,
      probeIntervalMs: s.probe.intervalSeconds * 1000,
      probeTimeoutMs: s.probe.timeoutSeconds * 1000,
      canaryTimeoutMs: s.probe.canaryTimeoutSeconds * 1000,
      thresholds: {
        exhaustedMs: s.probe.exhaustedSeconds * 1000,
        canaryFailures: s.probe.exhaustedCanaryFailures,
        pendingTimeoutsMax: s.probe.pendingTimeoutsMaxCount,
        pendingTimeoutsWindowMs: s.probe.pendingTimeoutsWindowSeconds * 1000,
        oldestWaitMaxMs: s.probe.oldestWaitMaxSeconds * 1000,
        capacityLostMs: s.probe.capacityLostSeconds * 1000,
        unreachableMs: s.probe.unreachableSeconds * 1000,
        recoveryMs: s.probe.recoverySeconds * 1000,
      },
      forbiddenModules: [...s.forbiddenModules],
      scanIntervalMs: s.probe.scanIntervalSeconds * 1000,
      podName: 'demo-7d9f-abcde',
      podNamespace: 'team-a',
      logLevel: 'info',
    });
    expect(config.scanRoots.map((r) => r.spec)).toEqual(s.scanRoots);
  });
});
