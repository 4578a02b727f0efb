// What the informer caches keep (operator/src/trim.ts): the parts the controller never reads are
// dropped, and every decision made from a trimmed object is the one made from the whole object.
import { describe, expect, it } from 'vitest';
import { decideApply } from '../../operator/src/diff.ts';
import { desiredObjects } from '../../operator/src/desired.ts';
import { computeStatus } from '../../operator/src/status.ts';
import { planRemediation } from '../../operator/src/remediation.ts';
import { trimArcDeployment, trimOwned, trimPod } from '../../operator/src/trim.ts';
import type { KubeObject, ManagedFieldsEntry, ObservedPod } from '../../operator/src/types.ts';
import { arcDeployment, deepFreeze, pod } from './fixtures.ts';

const managed = (manager: string, operation: string, subresource?: string, fieldsV1: Record<string, unknown> = { 'f:spec': { 'f:type': {} } }): ManagedFieldsEntry => ({
  manager,
  operation,
  apiVersion: 'v1',
  fieldsType: 'FieldsV1',
  fieldsV1,
  ...(subresource === undefined ? {} : { subresource }),
});

/** A pod as the API server lists it: spec, status and managedFields in full. */
function fullPod(name: string, poolHealthy: 'True' | 'False'): ObservedPod {
  const base = pod(name, poolHealthy, { reason: poolHealthy === 'False' ? 'PoolExhausted' : undefined, since: '2026-03-01T11:00:00Z' });
  return {
    ...base,
    metadata: { ...base.metadata, uid: `uid-${name}`, managedFields: [managed('kube-controller-manager', 'Update'), managed('arc-sidecar', 'Apply', 'status')] },
    spec: {
      nodeName: 'kwok-node-1',
      containers: [
        { name: 'arc', image: 'ghcr.io/arcops/arc-service:0.1.0', env: [{ name: 'A', value: 'x'.repeat(500) }], ports: [{ containerPort: 8000 }] } as never,
        { name: 'sidecar', image: 'ghcr.io/arcops/arc-sidecar:0.1.0' },
      ],
      volumes: [{ name: 'tokens', secret: { secretName: 'arc-tokens' } }],
    } as ObservedPod['spec'],
    status: {
      ...base.status,
      startTime: '2026-03-01T10:59:00Z',
      conditions: [...(base.status?.conditions ?? []), { type: 'Ready', status: poolHealthy, lastTransitionTime: '2026-03-01T11:00:00Z' }],
      containerStatuses: [{ name: 'arc', ready: true, restartCount: 0 }],
      podIP: '10.0.0.1',
    } as ObservedPod['status'],
  };
}

describe('trimPod', () => {
  it('keeps metadata, the containers names and images, node, phase, start time and conditions; drops the rest', () => {
    const full = deepFreeze(fullPod('a', 'True'));
    const trimmed = trimPod(full) as ObservedPod & Record<string, unknown>;
    expect(trimmed.metadata?.managedFields).toBeUndefined();
    const { managedFields: _dropped, ...meta } = full.metadata ?? {};
    expect(trimmed.metadata).toEqual(meta);
    expect(trimmed.spec).toEqual({
      nodeName: 'kwok-node-1',
      containers: [
        { name: 'arc', image: 'ghcr.io/arcops/arc-service:0.1.0' },
        { name: 'sidecar', image: 'ghcr.io/arcops/arc-sidecar:0.1.0' },
      ],
    });
    expect(trimmed.status).toEqual({ phase: 'Running', startTime: '2026-03-01T10:59:00Z', conditions: full.status?.conditions });
    expect(JSON.stringify(trimmed).length).toBeLessThan(JSON.stringify(full).length / 2);
  });

  it('leads to the same remediation plan and the same status as the whole pods', () => {
    const arcd = deepFreeze(arcDeployment({ replicas: 3 }));
    const full = deepFreeze([fullPod('a', 'False'), fullPod('b', 'True'), fullPod('c', 'True')]);
    const trimmed = full.map((p) => trimPod(p) as ObservedPod);
    const now = new Date('2026-03-01T12:00:00Z');
    const input = { arcd, templateHash: undefined, state: {}, history: [], now };
    const fromFull = planRemediation({ ...input, pods: full });
    expect(fromFull.evictions.map((e) => e.pod)).toEqual(['a']);
    expect(planRemediation({ ...input, pods: trimmed })).toEqual(fromFull);
    const obs = { arcd, deployment: undefined, secret: { state: 'ok' as const }, problems: [], extraConditions: [] };
    expect(computeStatus({ ...obs, pods: trimmed }, now)).toEqual(computeStatus({ ...obs, pods: full }, now));
  });
});

describe('trimOwned and trimArcDeployment', () => {
  it('keep only our own apply entry of managedFields, so apply decisions do not change', () => {
    const arcd = deepFreeze(arcDeployment({}, { uid: 'arcd-uid' }));
    const desired = desiredObjects(arcd, { tokenHash: 'abc' }).find((o) => o.kind === 'Service')!;
    // Observed: as applied, our entry still owning a field we no longer set, and other managers' entries.
    const observed: KubeObject = deepFreeze({
      ...desired,
      metadata: {
        ...desired.metadata,
        resourceVersion: '7',
        managedFields: [
          managed('arc-operator', 'Apply', undefined, { 'f:spec': { 'f:loadBalancerIP': {} } }),
          managed('arc-operator', 'Update', 'status'),
          managed('kubectl', 'Update'),
        ],
      },
    });
    const trimmed = trimOwned(observed);
    expect(trimmed.metadata?.managedFields?.map((m) => `${m.manager}/${m.operation}`)).toEqual(['arc-operator/Apply']);
    const decision = decideApply(desired, observed, 'arcd-uid', 'arc-operator');
    expect(decision).toMatchObject({ action: 'update', why: 'stale-field' });
    expect(decideApply(desired, trimmed, 'arcd-uid', 'arc-operator')).toEqual(decision);
  });

  it('drop every managedFields entry of an ArcDeployment and nothing else', () => {
    const arcd = deepFreeze(arcDeployment({}, { managedFields: [managed('kubectl', 'Apply')] }));
    const { managedFields: _dropped, ...meta } = arcd.metadata;
    expect(trimArcDeployment(arcd)).toEqual({ ...arcd, metadata: meta });
  });
});
