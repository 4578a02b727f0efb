// The informers (informers.ts): which ArcDeployment a change concerns, and which changes ask for
// a pass.
import { describe, expect, it } from 'vitest';
import { Informers, onlyStatusChanged, ownerKey } from '../../operator/src/informers.ts';
import type { KubeObject } from '../../operator/src/types.ts';
import { FakeClock, flush } from '../support/fake-clock.ts';
import { FakeKube, waitForAbort } from './fake-kube.ts';
import { silentLogger } from './fixtures.ts';

function deployment(name: string, rv: string, owner = 'demo'): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name,
      namespace: 'team-a',
      resourceVersion: rv,
      ownerReferences: [{ apiVersion: 'arcops.dev/v1alpha1', kind: 'ArcDeployment', name: owner, uid: 'u1', controller: true }],
    },
  };
}

describe('ownerKey (which ArcDeployment an event concerns)', () => {
  it.each<[string, KubeObject, string | undefined]>([
    ['an ArcDeployment itself', { kind: 'ArcDeployment', metadata: { name: 'demo', namespace: 'ns' } }, 'ns/demo'],
    ['an owned Deployment', deployment('demo', '1', 'owner-x'), 'team-a/owner-x'],
    [
      'a pod, by its instance label',
      { kind: 'Pod', metadata: { name: 'demo-7f-x', namespace: 'ns', labels: { 'app.kubernetes.io/name': 'arc', 'app.kubernetes.io/instance': 'demo' } } },
      'ns/demo',
    ],
    ['an object owned by something else', { kind: 'Service', metadata: { name: 's', namespace: 'ns', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'c', uid: 'u', controller: true }] } }, undefined],
    ['a pod of another app', { kind: 'Pod', metadata: { name: 'p', namespace: 'ns', labels: { 'app.kubernetes.io/name': 'web', 'app.kubernetes.io/instance': 'demo' } } }, undefined],
    ['a cluster-scoped object', { kind: 'ArcDeployment', metadata: { name: 'x' } }, undefined],
  ])('maps %s', (_what, obj, expected) => {
    expect(ownerKey(obj)).toBe(expected);
  });
});

describe('ArcDeployment updates that ask for no pass', () => {
  const base: KubeObject = {
    apiVersion: 'arcops.dev/v1alpha1',
    kind: 'ArcDeployment',
    metadata: { name: 'demo', namespace: 'team-a', uid: 'u1', generation: 1, resourceVersion: '1', labels: { team: 'a' } },
    spec: { replicas: 2 },
  };
  const changed = (rv: string, over: { metadata?: Record<string, unknown>; status?: unknown; spec?: unknown }): KubeObject => ({
    ...base,
    ...(over.spec === undefined ? {} : { spec: over.spec }),
    ...(over.status === undefined ? {} : { status: over.status }),
    metadata: { ...base.metadata, resourceVersion: rv, ...over.metadata },
  });

  it.each<[string, KubeObject, boolean]>([
    ['a status write', changed('2', { status: { readyReplicas: 2 } }), true],
    ['managedFields only', changed('2', { metadata: { managedFields: [{ manager: 'arc-operator' }] } }), true],
    ['a spec change (generation)', changed('2', { spec: { replicas: 3 }, metadata: { generation: 2 } }), false],
    ['an annotation', changed('2', { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': 'now' } } }), false],
    ['a label', changed('2', { metadata: { labels: { team: 'b' } } }), false],
    ['a deletion', changed('2', { metadata: { deletionTimestamp: '2026-03-01T00:00:00Z' } }), false],
    ['a finalizer', changed('2', { metadata: { finalizers: ['example.com/keep'] } }), false],
    ['another object of the same name', changed('2', { metadata: { uid: 'u2' } }), false],
  ])('%s: status only = %s', (_what, after, expected) => {
    expect(onlyStatusChanged(base, after)).toBe(expected);
  });

  it('the informers enqueue an ArcDeployment for its creation and spec changes, not for its status writes', async () => {
    const kube = new FakeKube();
    const clock = new FakeClock();
    const keys: string[] = [];
    kube.listScript = (res) => (res.plural === 'arcdeployments' ? [base] : []);
    kube.watchScript = async (call) => {
      if (call.res.plural === 'arcdeployments') {
        call.onEvent({ type: 'MODIFIED', object: changed('2', { status: { readyReplicas: 1 } }) });
        call.onEvent({ type: 'MODIFIED', object: changed('3', { status: { readyReplicas: 2 } }) });
        call.onEvent({ type: 'MODIFIED', object: changed('4', { spec: { replicas: 3 }, metadata: { generation: 2 } }) });
      }
      return waitForAbort(call.options.signal);
    };
    const informers = new Informers({ client: kube, clock, logger: silentLogger, namespaces: [], watchTimeoutMs: 60_000, onKey: (key, kind) => keys.push(`${kind}:${key}`) });
    informers.start();
    await flush();
    expect(keys).toEqual(['ArcDeployment:team-a/demo', 'ArcDeployment:team-a/demo']);
    // The cache holds the latest object all the same.
    expect(informers.arcDeployment('team-a', 'demo')?.metadata.resourceVersion).toBe('4');
    await informers.stop();
  });
});
