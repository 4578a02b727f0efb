import { describe, expect, it } from 'vitest';
import { selectorString } from '../../operator/src/names.ts';
import { computeStatus, mergeConditions } from '../../operator/src/status.ts';
import type { Observation } from '../../operator/src/status.ts';
import type { Condition, ObservedDeployment } from '../../operator/src/types.ts';
import { arcDeployment, deepFreeze, deploymentStatus, pod } from './fixtures.ts';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const LATER = new Date('2026-03-01T12:05:00.000Z');

describe('computeStatus', () => {
  const healthyDeployment = deploymentStatus({ replicas: 2, readyReplicas: 2, availableReplicas: 2, updatedReplicas: 2 });
  const base = (over: Partial<Observation> = {}): Observation => ({
    arcd: arcDeployment(),
    deployment: healthyDeployment,
    pods: [pod('demo-a', 'True'), pod('demo-b', 'True')],
    secret: { state: 'ok' },
    problems: [],
    ...over,
  });
  const cond = (status: ReturnType<typeof computeStatus>, type: string): Condition | undefined => status.conditions?.find((c) => c.type === type);

  it.each<[string, Partial<Observation>, [string, string], [string, string], [string, string]]>([
    ['all healthy', {}, ['True', 'MinimumReplicasAvailable'], ['False', 'RolloutComplete'], ['False', 'AsExpected']],
    [
      'the token Secret is missing and nothing exists yet',
      { secret: { state: 'missing', name: 'arc-tokens' }, deployment: undefined, pods: [] },
      ['False', 'MinimumReplicasUnavailable'],
      ['False', 'SecretNotFound'],
      ['True', 'SecretNotFound'],
    ],
    [
      'the Secret lacks the key',
      { secret: { state: 'keyMissing', name: 'arc-tokens', key: 'tokens' } },
      ['True', 'MinimumReplicasAvailable'],
      ['False', 'SecretKeyNotFound'],
      ['True', 'SecretKeyNotFound'],
    ],
    [
      'a rollout is under way',
      { deployment: deploymentStatus({ replicas: 3, readyReplicas: 2, availableReplicas: 2, updatedReplicas: 1 }) },
      ['True', 'MinimumReplicasAvailable'],
      ['True', 'RolloutInProgress'],
      ['False', 'AsExpected'],
    ],
    [
      'the Deployment controller has not seen the new template yet',
      { deployment: { ...healthyDeployment, metadata: { name: 'demo', namespace: 'team-a', generation: 2 } } },
      ['True', 'MinimumReplicasAvailable'],
      ['True', 'RolloutInProgress'],
      ['False', 'AsExpected'],
    ],
    [
      'new pods wait for a healthy pool',
      { deployment: deploymentStatus({ replicas: 2, readyReplicas: 0, availableReplicas: 0, updatedReplicas: 2 }), pods: [pod('a', undefined), pod('b', undefined)] },
      ['False', 'MinimumReplicasUnavailable'],
      ['True', 'RolloutInProgress'],
      ['False', 'AsExpected'],
    ],
    [
      'one pod reports an exhausted pool',
      { deployment: deploymentStatus({ replicas: 2, readyReplicas: 1, availableReplicas: 1, updatedReplicas: 2 }), pods: [pod('demo-a', 'True'), pod('demo-b', 'False')] },
      ['True', 'MinimumReplicasAvailable'],
      ['True', 'RolloutInProgress'],
      ['True', 'PodsUnhealthy'],
    ],
    [
      'the rollout exceeded its deadline',
      {
        deployment: deploymentStatus({
          replicas: 3,
          readyReplicas: 2,
          availableReplicas: 2,
          updatedReplicas: 1,
          conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'ReplicaSet "demo-7f" has timed out progressing.' }],
        }),
      },
      ['True', 'MinimumReplicasAvailable'],
      ['False', 'ProgressDeadlineExceeded'],
      ['True', 'ProgressDeadlineExceeded'],
    ],
    [
      'a Service of that name belongs to someone else',
      { problems: [{ kind: 'Service', name: 'demo', reason: 'ResourceConflict', message: 'Service demo already exists and is not controlled by this ArcDeployment' }] },
      ['True', 'MinimumReplicasAvailable'],
      ['False', 'RolloutComplete'],
      ['True', 'ResourceConflict'],
    ],
    [
      'the API server refused an object',
      { problems: [{ kind: 'Deployment', name: 'demo', reason: 'ApplyFailed', message: 'spec.template.spec.affinity: Invalid value' }] },
      ['True', 'MinimumReplicasAvailable'],
      ['False', 'RolloutComplete'],
      ['True', 'ApplyFailed'],
    ],
    [
      'it is paused',
      { arcd: arcDeployment({ paused: true }), secret: { state: 'unchecked' } },
      ['True', 'MinimumReplicasAvailable'],
      ['False', 'Paused'],
      ['False', 'AsExpected'],
    ],
    [
      'it is scaled to zero',
      { arcd: arcDeployment({ replicas: 0 }), deployment: deploymentStatus({ replicas: 0 }), pods: [] },
      ['True', 'ScaledToZero'],
      ['False', 'RolloutComplete'],
      ['False', 'AsExpected'],
    ],
  ])('when %s: Available, Progressing, Degraded', (_what, over, available, progressing, degraded) => {
    const status = computeStatus(base(over), NOW);
    expect([cond(status, 'Available')?.status, cond(status, 'Available')?.reason]).toEqual(available);
    expect([cond(status, 'Progressing')?.status, cond(status, 'Progressing')?.reason]).toEqual(progressing);
    expect([cond(status, 'Degraded')?.status, cond(status, 'Degraded')?.reason]).toEqual(degraded);
  });

  it("says the same of a new Deployment before and after its controller first sees it: that first sight costs no status write", () => {
    const created: ObservedDeployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'demo', namespace: 'team-a', generation: 1 } };
    const before = computeStatus(base({ deployment: created, pods: [] }), NOW);
    const seen = computeStatus(base({ deployment: deploymentStatus({ replicas: 0, updatedReplicas: 0 }), pods: [] }), NOW);
    expect(cond(before, 'Progressing')).toMatchObject({ status: 'True', reason: 'RolloutInProgress', message: '0 of 2 pods run the current template' });
    expect(seen).toEqual(before);
    // A template its controller has not seen yet is still said so.
    const changed = computeStatus(base({ deployment: { ...healthyDeployment, metadata: { name: 'demo', namespace: 'team-a', generation: 2 } } }), NOW);
    expect(cond(changed, 'Progressing')?.message).toBe('waiting for the Deployment controller to observe the new template');
  });

  it('counts replicas from the Deployment, and ready and healthy pods from the pods themselves', () => {
    const status = computeStatus(
      base({
        // The Deployment controller has not caught up with the pods yet.
        deployment: deploymentStatus({ replicas: 4, readyReplicas: 0, availableReplicas: 0, updatedReplicas: 3 }),
        pods: [pod('a', 'True'), pod('b', 'True'), pod('c', 'False'), pod('d', undefined), pod('e', 'True', { deleting: true })],
      }),
      NOW,
    );
    expect(status).toMatchObject({ replicas: 4, readyReplicas: 2, availableReplicas: 0, updatedReplicas: 3, healthyReplicas: 2, observedGeneration: 1 });
    expect(cond(status, 'Available')).toMatchObject({ status: 'True', message: '2 of 2 pods ready (at least 1 needed)' });
    expect(status.selector).toBe('app.kubernetes.io/instance=demo,app.kubernetes.io/name=arc');
    expect(selectorString('demo')).toBe(status.selector);
  });

  it('turns Available False as soon as the pods stop being Ready, before the Deployment says so', () => {
    const status = computeStatus(base({ pods: [pod('demo-a', 'False'), pod('demo-b', 'True', { ready: false })] }), NOW);
    expect(status.readyReplicas).toBe(0);
    expect(cond(status, 'Available')).toMatchObject({ status: 'False', reason: 'MinimumReplicasUnavailable' });
  });

  it('names the unhealthy pods and their reasons in the Degraded message', () => {
    const status = computeStatus(base({ pods: [pod('demo-a', 'True'), pod('demo-b', 'False', { reason: 'ForbiddenModule' })] }), NOW);
    expect(cond(status, 'Degraded')?.message).toBe('1 of 2 pods report an unhealthy pool: demo-b (ForbiddenModule)');
  });

  it('tells the user what to do about a missing Secret', () => {
    const status = computeStatus(base({ secret: { state: 'missing', name: 'arc-tokens' }, deployment: undefined }), NOW);
    expect(cond(status, 'Degraded')?.message).toContain('Secret arc-tokens (spec.apiTokenSecretRef) was not found in namespace team-a');
    expect(cond(status, 'Degraded')?.message).toContain('under the key "tokens"');
  });

  it('keeps lastTransitionTime while a condition holds and moves it when it flips', () => {
    const first = computeStatus(base(), NOW);
    const arcdAfter = arcDeployment({}, {});
    arcdAfter.status = first;
    const same = computeStatus(base({ arcd: arcdAfter }), LATER);
    expect(same).toEqual(first);
    const flipped = computeStatus(base({ arcd: arcdAfter, pods: [pod('demo-a', 'True'), pod('demo-b', 'False')] }), LATER);
    expect(cond(flipped, 'Degraded')?.lastTransitionTime).toBe('2026-03-01T12:05:00Z');
    expect(cond(flipped, 'Available')?.lastTransitionTime).toBe('2026-03-01T12:00:00Z');
  });

  it('keeps the remediation history, which cannot be observed again', () => {
    const arcd = arcDeployment();
    arcd.status = {
      remediations: [{ time: '2026-02-01T00:00:00Z', action: 'Evict', pod: 'demo-x', reason: 'PoolExhausted', result: 'Evicted' }],
      lastRemediationTime: '2026-02-01T00:00:00Z',
    };
    const status = computeStatus(base({ arcd }), NOW);
    expect(status.remediations).toEqual(arcd.status.remediations);
    expect(status.lastRemediationTime).toBe('2026-02-01T00:00:00Z');
  });

  it('merges conditions decided elsewhere and drops stale ones', () => {
    const arcd = arcDeployment();
    arcd.status = { conditions: [{ type: 'Obsolete', status: 'True', reason: 'Old', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }] };
    const status = computeStatus(base({ arcd, extraConditions: [{ type: 'RemediationBlocked', status: 'True', reason: 'Storm', message: '3 of 3 pods unhealthy' }] }), NOW);
    expect(status.conditions?.map((c) => c.type)).toEqual(['Available', 'Progressing', 'Degraded', 'RemediationBlocked']);
  });

  it('never mutates what it observed', () => {
    const observation = deepFreeze(base({ pods: [pod('a', 'True'), pod('b', 'False')] }));
    expect(() => computeStatus(observation, NOW)).not.toThrow();
  });

  it('stamps conditions with the generation and a second-precision time', () => {
    const [c] = mergeConditions(undefined, [{ type: 'Available', status: 'True', reason: 'X', message: '' }], 7, new Date('2026-03-01T12:00:00.789Z'));
    expect(c).toEqual({ type: 'Available', status: 'True', observedGeneration: 7, lastTransitionTime: '2026-03-01T12:00:00Z', reason: 'X', message: '' });
  });
});
