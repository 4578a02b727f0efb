// Pods, inputs and times for the remediation tables (remediation, remediation-status and
// remediation-memory tests).
import type { RemediationInput } from '../../operator/src/remediation.ts';
import type { ArcDeploymentSpec, ObservedPod, RemediationSpec } from '../../operator/src/types.ts';
import { arcDeployment, deepFreeze } from './fixtures.ts';

export const NOW = new Date('2026-03-01T12:00:00Z');
export const HASH = 'cur-hash';
export const IMAGE = 'registry.example.com/arc/service:1.4.2';

export function ago(seconds: number): string {
  return new Date(NOW.getTime() - seconds * 1000).toISOString().replace('.000Z', 'Z');
}

export interface PodOptions {
  /** Seconds the PoolHealthy condition has been False (undefined: True). */
  unhealthyFor?: number;
  reason?: string;
  message?: string;
  ready?: boolean;
  deleting?: boolean;
  hash?: string;
  startedAgo?: number;
  noCondition?: boolean;
}

export function p(name: string, o: PodOptions = {}): ObservedPod {
  const unhealthy = o.unhealthyFor !== undefined;
  const conditions = [{ type: 'Ready', status: (o.ready ?? !unhealthy) ? 'True' : 'False' }];
  if (!o.noCondition) {
    conditions.push({
      type: 'arcops.dev/PoolHealthy',
      status: unhealthy ? 'False' : 'True',
      reason: unhealthy ? (o.reason ?? 'PoolExhausted') : 'Healthy',
      ...(o.message === undefined ? {} : { message: o.message }),
      lastTransitionTime: ago(o.unhealthyFor ?? 3600),
    } as (typeof conditions)[number]);
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'team-a',
      uid: `uid-${name}`,
      creationTimestamp: ago(o.startedAgo ?? 7200),
      annotations: { 'arcops.dev/config-hash': o.hash ?? HASH },
      ...(o.deleting ? { deletionTimestamp: ago(1) } : {}),
    },
    spec: { containers: [{ name: 'arc', image: IMAGE }, { name: 'sidecar', image: 'sidecar:1' }] },
    status: { phase: 'Running', startTime: ago(o.startedAgo ?? 7200), conditions },
  };
}

export function input(pods: ObservedPod[], remediation: RemediationSpec = {}, more: Partial<RemediationInput> & { spec?: Partial<ArcDeploymentSpec> } = {}): RemediationInput {
  const { spec, ...rest } = more;
  const replicas = spec?.replicas ?? 3;
  return deepFreeze({
    arcd: arcDeployment({ replicas, remediation: { unhealthySeconds: 30, ...remediation }, ...spec }),
    pods,
    templateHash: HASH,
    state: {},
    history: [],
    now: NOW,
    ...rest,
  });
}
