// The record of an eviction in status survives what the fault tests made happen against the real
// control plane (test/operator/faults-control-plane.cluster.test.ts), here on cue with an
// in-memory API: the status write after an eviction refused (API server restarting, etcd away),
// and a cache that after a reconnect delivers an earlier write of ours after a later one.
import { describe, expect, it } from 'vitest';
import { Controller } from '../../operator/src/controller.ts';
import { KubeApiError } from '../../operator/src/errors.ts';
import { EventRecorder } from '../../operator/src/events.ts';
import { Executor } from '../../operator/src/executor.ts';
import { RESOURCES, resourceForKind } from '../../operator/src/kube.ts';
import type { ApplyOptions, ResourceType } from '../../operator/src/kube.ts';
import type { ArcDeployment, KubeObject, ObservedPod } from '../../operator/src/types.ts';
import { FakeClock } from '../support/fake-clock.ts';
import { FakeKube } from './fake-kube.ts';
import { arcDeployment, silentLogger } from './fixtures.ts';

const T0 = Date.parse('2026-03-01T12:00:00Z');

function pod(name: string, unhealthy: boolean): KubeObject {
  const pool = unhealthy ? { status: 'False', reason: 'PoolExhausted' } : { status: 'True', reason: 'Healthy' };
  return {
    metadata: { name, namespace: 'team-a', uid: `uid-${name}`, creationTimestamp: '2026-03-01T10:00:00Z', labels: { 'app.kubernetes.io/instance': 'demo' } },
    spec: { containers: [{ name: 'arc', image: 'img:1' }] },
    status: {
      phase: 'Running',
      startTime: '2026-03-01T10:00:00Z',
      conditions: [
        { type: 'Ready', status: unhealthy ? 'False' : 'True' },
        { type: 'arcops.dev/PoolHealthy', ...pool, message: 'test', lastTransitionTime: new Date(T0 - 40_000).toISOString().replace('.000Z', 'Z') },
      ],
    },
  };
}

/** A controller over FakeKube whose ArcDeployment cache shows `view` (default: the latest). */
function setup() {
  const kube = new FakeKube();
  const clock = new FakeClock();
  clock.set(T0);
  kube.put(RESOURCES.arcDeployment, arcDeployment({ replicas: 3, remediation: { unhealthySeconds: 30, stormThreshold: 3 } }));
  kube.put(RESOURCES.secret, { metadata: { name: 'arc-tokens', namespace: 'team-a' }, data: { tokens: Buffer.from('token-one-123\n').toString('base64') } });
  const latest = (): ArcDeployment => structuredClone(kube.read(RESOURCES.arcDeployment, 'team-a', 'demo')) as ArcDeployment;
  const world = { view: undefined as ArcDeployment | undefined, refuseStatus: false };
  const apply = kube.apply.bind(kube);
  kube.apply = <T extends KubeObject = KubeObject>(res: ResourceType, body: KubeObject, options: ApplyOptions): Promise<T> =>
    world.refuseStatus && options.subresource === 'status'
      ? Promise.reject(new KubeApiError(503, 'ServiceUnavailable', 'etcdserver: request timed out', { method: 'PATCH', path: 'status' }))
      : apply<T>(res, body, options);
  const controller = new Controller({
    client: kube,
    cache: {
      arcDeployment: () => world.view ?? latest(),
      get: (kind, ns, name) => kube.read(resourceForKind(kind), ns, name),
      pods: () => [...kube.objects.values()].filter((o): o is ObservedPod => o.kind === 'Pod'),
    },
    executor: new Executor({ client: kube, logger: silentLogger, mayWrite: () => true }),
    events: new EventRecorder({ client: kube, clock, logger: silentLogger, instance: 'op' }),
    clock,
    logger: silentLogger,
  });
  const evicted = (): string[] => (latest().status?.remediations ?? []).filter((r) => r.result === 'Evicted').map((r) => r.pod ?? '');
  const gone = (name: string): void => void kube.objects.delete([...kube.objects.keys()].find((k) => k.endsWith(`/${name}`) && kube.objects.get(k)?.kind === 'Pod') ?? '');
  return { kube, clock, controller, world, latest, evicted, gone };
}

describe('Controller: the record of an eviction', () => {
  it('is kept when the status write after the eviction is refused, and written once writes go through', async () => {
    const t = setup();
    t.kube.put(RESOURCES.pod, pod('a', true));
    t.kube.put(RESOURCES.pod, pod('b', false));
    t.kube.put(RESOURCES.pod, pod('c', false));
    t.world.refuseStatus = true;
    await expect(t.controller.reconcile('team-a/demo')).rejects.toThrow(/request timed out/);
    // The pod is gone from the cache (and a replacement is there): only the record remembers it.
    t.gone('a');
    t.kube.put(RESOURCES.pod, pod('d', false));
    await t.clock.advance(5000);
    await expect(t.controller.reconcile('team-a/demo')).rejects.toThrow(/request timed out/);
    t.world.refuseStatus = false;
    await t.controller.reconcile('team-a/demo');
    expect(t.evicted()).toEqual(['a']);
    expect(t.latest().status?.remediationState?.evictionTimes).toHaveLength(1);
  });

  it('is kept when the cache shows an earlier write of ours after a later one', async () => {
    const t = setup();
    t.kube.put(RESOURCES.pod, pod('a', true));
    t.kube.put(RESOURCES.pod, pod('b', false));
    t.kube.put(RESOURCES.pod, pod('c', false));
    t.world.view = t.latest(); // the cache stands still
    await t.controller.reconcile('team-a/demo'); // evicts a, writes its record
    const afterFirst = t.latest();
    t.gone('a');
    t.kube.put(RESOURCES.pod, pod('d', false));
    t.kube.put(RESOURCES.pod, pod('b', true));
    await t.clock.advance(5000);
    await t.controller.reconcile('team-a/demo'); // evicts b, writes both records
    expect(t.evicted()).toEqual(['a', 'b']);
    // The watch now delivers the first write's version: it knows only of a.
    t.world.view = afterFirst;
    await t.clock.advance(1000);
    await t.controller.reconcile('team-a/demo');
    expect(t.evicted()).toEqual(['a', 'b']);
    expect(t.latest().status?.remediationState?.evictionTimes).toHaveLength(2);
    // Caught up: still both.
    t.world.view = undefined;
    await t.controller.reconcile('team-a/demo');
    expect(t.evicted()).toEqual(['a', 'b']);
  });
});
