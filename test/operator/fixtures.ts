// Builders for the operator's unit tests: ArcDeployments, observed Deployments and pods, and
// a silent logger. Plain data, no I/O.
import pino from 'pino';
import type { Logger } from 'pino';
import type { ArcDeployment, ArcDeploymentSpec, ObservedDeployment, ObservedPod } from '../../operator/src/types.ts';

export const silentLogger: Logger = pino({ level: 'silent' });

export function arcDeployment(spec: Partial<ArcDeploymentSpec> = {}, meta: Partial<ArcDeployment['metadata']> = {}): ArcDeployment {
  return {
    apiVersion: 'arcops.dev/v1alpha1',
    kind: 'ArcDeployment',
    metadata: { name: 'demo', namespace: 'team-a', uid: 'uid-demo-1', generation: 1, resourceVersion: '100', ...meta },
    spec: {
      image: 'registry.example.com/arc/service:1.4.2',
      sidecarImage: 'registry.example.com/arc/sidecar:0.1.0',
      apiTokenSecretRef: { name: 'arc-tokens' },
      ...spec,
    },
  };
}

export function deploymentStatus(
  status: NonNullable<ObservedDeployment['status']>,
  { generation = 1, name = 'demo' }: { generation?: number; name?: string } = {},
): ObservedDeployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'team-a', generation },
    status: { observedGeneration: generation, ...status },
  };
}

/**
 * A pod of the `demo` ArcDeployment. Its Ready condition follows the pool condition, as the
 * readiness gate makes it in a cluster (`ready` overrides that).
 */
export function pod(
  name: string,
  poolHealthy: 'True' | 'False' | undefined,
  {
    reason,
    deleting = false,
    phase = 'Running',
    since = '2026-01-01T00:00:00Z',
    ready = poolHealthy === 'True',
  }: { reason?: string; deleting?: boolean; phase?: string; since?: string; ready?: boolean } = {},
): ObservedPod {
  const conditions: NonNullable<ObservedPod['status']>['conditions'] = [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: since }];
  if (poolHealthy !== undefined) {
    conditions.push({ type: 'arcops.dev/PoolHealthy', status: poolHealthy, reason: reason ?? (poolHealthy === 'True' ? 'Healthy' : 'PoolExhausted'), lastTransitionTime: since });
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'team-a',
      labels: { 'app.kubernetes.io/name': 'arc', 'app.kubernetes.io/instance': 'demo' },
      ...(deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
    },
    status: { phase, conditions },
  };
}

/** Freezes an object graph, so a test fails if code under test mutates its input. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
