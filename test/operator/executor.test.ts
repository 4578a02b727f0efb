// The executor against the in-memory API (fake-kube.ts): what it writes for each decision of
// diff.ts, how it reports refusals, what an eviction ends as, and that a process which is not
// the leader writes nothing.
import { describe, expect, it } from 'vitest';
import { desiredObjects } from '../../operator/src/desired.ts';
import { KubeApiError, NotLeaderError } from '../../operator/src/errors.ts';
import { Executor } from '../../operator/src/executor.ts';
import { RESOURCES } from '../../operator/src/kube.ts';
import type { KubeObject } from '../../operator/src/types.ts';
import { FakeKube } from './fake-kube.ts';
import { arcDeployment, silentLogger } from './fixtures.ts';

const ARCD = arcDeployment();
const UID = ARCD.metadata.uid ?? '';

function world(leading = true) {
  const kube = new FakeKube();
  const state = { leading };
  const executor = new Executor({ client: kube, logger: silentLogger, mayWrite: () => state.leading });
  const service = desiredObjects(ARCD).find((o) => o.kind === 'Service') as KubeObject;
  return { kube, state, executor, service };
}

const writes = (kube: FakeKube): string[] => kube.calls.filter((c) => !['get', 'list', 'watch'].includes(c.method)).map((c) => `${c.method} ${c.resource}/${c.name ?? ''}`);

describe('Executor.applyObject', () => {
  it('creates an object the cache does not have with one request', async () => {
    const { kube, executor, service } = world();
    const out = await executor.applyObject(service, undefined, UID);
    expect(out).toMatchObject({ kind: 'Service', name: 'demo', result: 'created' });
    expect(kube.calls.map((c) => c.method)).toEqual(['apply']);
    expect(kube.read(RESOURCES.service, 'team-a', 'demo')?.metadata?.ownerReferences?.[0]?.uid).toBe(UID);
  });

  it('writes nothing for an object that is as declared', async () => {
    const { kube, executor, service } = world();
    const created = await executor.applyObject(service, undefined, UID);
    kube.calls.length = 0;
    const out = await executor.applyObject(service, created.object, UID);
    expect(out.result).toBe('unchanged');
    expect(writes(kube)).toEqual([]);
  });

  it('puts back a field edited by hand, and names it', async () => {
    const { kube, executor, service } = world();
    const created = await executor.applyObject(service, undefined, UID);
    const edited = kube.put(RESOURCES.service, { ...created.object, spec: { ...(created.object as { spec: object }).spec, type: 'NodePort' } });
    const out = await executor.applyObject(service, edited, UID);
    expect(out).toMatchObject({ result: 'updated', path: expect.stringContaining('type') as unknown });
    expect((kube.read(RESOURCES.service, 'team-a', 'demo') as { spec: { type: string } }).spec.type).toBe('ClusterIP');
  });

  it('never takes over an object of the same name that is not its own', async () => {
    const { kube, executor, service } = world();
    // As in etcd, whose first write is revision 2, no stored object has resourceVersion 1.
    kube.put(RESOURCES.pod, { metadata: { name: 'first-write', namespace: 'team-a' } });
    kube.put(RESOURCES.service, { metadata: { name: 'demo', namespace: 'team-a' }, spec: { type: 'ClusterIP' } });
    const out = await executor.applyObject(service, undefined, UID);
    expect(out.result).toBe('conflict');
    expect(out.message).toContain('demo');
    expect(kube.read(RESOURCES.service, 'team-a', 'demo')?.metadata?.ownerReferences).toBeUndefined();
  });

  it('reports a refusal of the API server as an outcome, with its message', async () => {
    const { kube, executor, service } = world();
    kube.apply = () => Promise.reject(new KubeApiError(422, 'Invalid', 'spec.ports[0].port: Invalid value', { method: 'PATCH', path: 'x' }));
    expect(await executor.applyObject(service, undefined, UID)).toMatchObject({ result: 'error', message: 'spec.ports[0].port: Invalid value' });
  });

  it('lets a transport failure through, for the reconcile to be retried', async () => {
    const { kube, executor, service } = world();
    kube.down = true;
    await expect(executor.applyObject(service, undefined, UID)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('writes nothing when not leading', async () => {
    const { kube, executor, service } = world(false);
    await expect(executor.applyObject(service, undefined, UID)).rejects.toBeInstanceOf(NotLeaderError);
    expect(writes(kube)).toEqual([]);
  });
});

describe('Executor.evict', () => {
  const pod = (uid: string): KubeObject => ({ metadata: { name: 'demo-a', namespace: 'team-a', uid } });
  it.each<[string, (k: FakeKube) => void, string]>([
    ['a pod that is there is evicted', (k) => k.put(RESOURCES.pod, pod('u1')), 'evicted'],
    ['a pod that is gone is gone', () => undefined, 'gone'],
    ['a name that is another pod now is gone (uid precondition)', (k) => k.put(RESOURCES.pod, pod('u2')), 'gone'],
    [
      'a PodDisruptionBudget refusal (429) is blocked',
      (k) => {
        k.evict = () => Promise.reject(new KubeApiError(429, 'TooManyRequests', 'Cannot evict pod as it would violate the pod\'s disruption budget.', { method: 'POST', path: 'e' }));
      },
      'blocked',
    ],
    [
      'another refusal is failed',
      (k) => {
        k.evict = () => Promise.reject(new KubeApiError(403, 'Forbidden', 'pods/eviction is forbidden', { method: 'POST', path: 'e' }));
      },
      'failed',
    ],
  ])('%s', async (_what, arrange, result) => {
    const { kube, executor } = world();
    arrange(kube);
    expect((await executor.evict('team-a', 'demo-a', 'u1')).result).toBe(result);
  });

  it('evicts nothing when not leading', async () => {
    const { kube, executor } = world(false);
    kube.put(RESOURCES.pod, pod('u1'));
    await expect(executor.evict('team-a', 'demo-a', 'u1')).rejects.toBeInstanceOf(NotLeaderError);
    expect(kube.read(RESOURCES.pod, 'team-a', 'demo-a')?.metadata?.deletionTimestamp).toBeUndefined();
  });
});

describe('Executor.writeStatus', () => {
  it('writes a changed status once, and not again while the cache still shows the old one', async () => {
    const { kube, executor } = world();
    kube.put(RESOURCES.arcDeployment, ARCD);
    const status = { observedGeneration: 1, replicas: 2 };
    expect(await executor.writeStatus(ARCD, status)).toBe(true);
    expect(await executor.writeStatus(ARCD, status)).toBe(false);
    expect(executor.unseenStatus(ARCD)).toEqual(status);
    expect(kube.calls.filter((c) => c.method === 'apply-status')).toHaveLength(1);
  });

  it('writes nothing when the status is as observed', async () => {
    const { kube, executor } = world();
    expect(await executor.writeStatus({ ...ARCD, status: { replicas: 2 } }, { replicas: 2 })).toBe(false);
    expect(writes(kube)).toEqual([]);
  });

  it('writes the record of an eviction already made even when no longer leading', async () => {
    const { kube, executor } = world(false);
    kube.put(RESOURCES.arcDeployment, ARCD);
    await expect(executor.writeStatus(ARCD, { replicas: 1 })).rejects.toBeInstanceOf(NotLeaderError);
    expect(await executor.writeStatus(ARCD, { replicas: 1 }, { record: true })).toBe(true);
  });
});
