// The controller's remediation half against an in-memory API (FakeKube): evictions go through
// the Eviction API, a PDB refusal comes back with backoff, a pod about to become a candidate
// brings the key back at that moment, a stale cache never causes a second eviction, and a
// process that does not lead evicts nothing.
import { describe, expect, it } from 'vitest';
import { Controller } from '../../operator/src/controller.ts';
import type { ObjectCache } from '../../operator/src/controller.ts';
import { NotLeaderError, KubeApiError } from '../../operator/src/errors.ts';
import { EventRecorder } from '../../operator/src/events.ts';
import { Executor } from '../../operator/src/executor.ts';
import { RESOURCES, resourceForKind } from '../../operator/src/kube.ts';
import { createMetrics } from '../../operator/src/metrics.ts';
import type { ArcDeployment, KubeObject, ObservedPod } from '../../operator/src/types.ts';
import { FakeClock } from '../support/fake-clock.ts';
import { FakeKube } from './fake-kube.ts';
import { arcDeployment, silentLogger } from './fixtures.ts';

const T0 = Date.parse('2026-03-01T12:00:00Z');

function podObject(name: string, falseSinceMs: number | undefined): KubeObject {
  const since = new Date(falseSinceMs ?? T0 - 3_600_000).toISOString().replace('.000Z', 'Z');
  return {
    metadata: { name, namespace: 'team-a', uid: `uid-${name}`, creationTimestamp: '2026-03-01T10:00:00Z', labels: { 'app.kubernetes.io/instance': 'demo' } },
    spec: { containers: [{ name: 'arc', image: 'img:1' }] },
    status: {
      phase: 'Running',
      startTime: '2026-03-01T10:00:00Z',
      conditions: [
        { type: 'Ready', status: falseSinceMs === undefined ? 'True' : 'False' },
        { type: 'arcops.dev/PoolHealthy', status: falseSinceMs === undefined ? 'True' : 'False', reason: falseSinceMs === undefined ? 'Healthy' : 'PoolExhausted', message: 'exhausted', lastTransitionTime: since },
      ],
    },
  };
}

function setup({ leader = true, stalePods = false } = {}) {
  const kube = new FakeKube();
  const clock = new FakeClock();
  clock.set(T0);
  kube.put(RESOURCES.arcDeployment, arcDeployment({ replicas: 3, remediation: { unhealthySeconds: 30 } }));
  kube.put(RESOURCES.secret, { metadata: { name: 'arc-tokens', namespace: 'team-a' }, data: { tokens: Buffer.from('token-one-123\n').toString('base64') } });
  const listPods = (): ObservedPod[] => [...kube.objects.values()].filter((o) => o.kind === 'Pod');
  let snapshot: ObservedPod[] | undefined;
  const cache: ObjectCache = {
    arcDeployment: (ns, name) => kube.read(RESOURCES.arcDeployment, ns, name) as ArcDeployment | undefined,
    get: (kind, ns, name) => kube.read(resourceForKind(kind), ns, name),
    // A stale cache keeps showing the pods as they were at the first look.
    pods: () => (stalePods ? (snapshot ??= structuredClone(listPods())) : listPods()),
  };
  const state = { leader };
  const metrics = createMetrics(undefined, { defaults: false });
  /** A controller process of its own (empty memory) on the same API and cache: `op` leads first. */
  const controllerFor = (instance: string): Controller =>
    new Controller({
      client: kube,
      cache,
      executor: new Executor({ client: kube, logger: silentLogger, mayWrite: () => state.leader }),
      events: new EventRecorder({ client: kube, clock, logger: silentLogger, instance }),
      clock,
      logger: silentLogger,
      ...(instance === 'op' ? { metrics } : {}),
    });
  const controller = controllerFor('op');
  const evictions = (): string[] => kube.calls.filter((c) => c.method === 'evict').map((c) => c.name ?? '');
  const arcd = (): ArcDeployment => kube.read(RESOURCES.arcDeployment, 'team-a', 'demo') as ArcDeployment;
  const events = (): { reason: string; kind: string }[] =>
    [...kube.objects.values()].filter((o) => o.kind === 'Event').map((e) => ({ reason: e['reason'] as string, kind: (e['involvedObject'] as { kind: string }).kind }));
  return { kube, clock, controller, controllerFor, evictions, arcd, events, metrics, state };
}

async function counterValue(t: ReturnType<typeof setup>, labels: Record<string, string>): Promise<number> {
  const { values } = await t.metrics.remediationsTotal.get();
  return values.filter((v) => Object.entries(labels).every(([k, w]) => v.labels[k as 'reason' | 'result'] === w)).reduce((s, v) => s + v.value, 0);
}

describe('Controller: remediation', () => {
  it('evicts a candidate through the Eviction API and reports it in status, Events and metrics', async () => {
    const t = setup();
    t.kube.put(RESOURCES.pod, podObject('a', T0 - 40_000));
    t.kube.put(RESOURCES.pod, podObject('b', undefined));
    t.kube.put(RESOURCES.pod, podObject('c', undefined));
    await t.controller.reconcile('team-a/demo');
    expect(t.evictions()).toEqual(['a']);
    expect(t.arcd().status?.remediations).toMatchObject([{ action: 'Evict', pod: 'a', reason: 'PoolExhausted', result: 'Evicted' }]);
    expect(t.arcd().status?.lastRemediationTime).toBe('2026-03-01T12:00:00Z');
    expect(t.arcd().status?.remediationState?.evictionTimes).toEqual(['2026-03-01T12:00:00Z']);
    expect(t.events()).toEqual(expect.arrayContaining([{ reason: 'Evicted', kind: 'ArcDeployment' }, { reason: 'Evicted', kind: 'Pod' }]));
    expect(await counterValue(t, { reason: 'PoolExhausted', result: 'evicted' })).toBe(1);
    const latency = await t.metrics.remediationLatency.get();
    expect(latency.values.find((v) => v.metricName === 'arc_operator_remediation_latency_seconds_sum')?.value).toBe(10);

    await t.controller.reconcile('team-a/demo');
    expect(t.evictions()).toEqual(['a']);
  });

  it('never evicts twice while the cache still shows the evicted pod as live', async () => {
    const t = setup({ stalePods: true });
    t.kube.put(RESOURCES.pod, podObject('a', T0 - 40_000));
    t.kube.put(RESOURCES.pod, podObject('b', T0 - 40_000));
    t.kube.put(RESOURCES.pod, podObject('c', undefined));
    t.kube.put(RESOURCES.pod, podObject('d', undefined));
    t.kube.put(RESOURCES.pod, podObject('e', undefined));
    await t.controller.reconcile('team-a/demo');
    await t.controller.reconcile('team-a/demo');
    await t.controller.reconcile('team-a/demo');
    expect(t.evictions()).toEqual(['a']);
  });

  it('brings the key back when a pod becomes a candidate', async () => {
    const t = setup();
    t.kube.put(RESOURCES.pod, podObject('a', T0 - 12_000));
    t.kube.put(RESOURCES.pod, podObject('b', undefined));
    t.kube.put(RESOURCES.pod, podObject('c', undefined));
    expect(await t.controller.reconcile('team-a/demo')).toEqual({ requeue: 'after', delayMs: 18_000 });
    expect(t.evictions()).toEqual([]);
  });

  it('counts a False condition without lastTransitionTime from when it first saw it', async () => {
    const t = setup();
    const sick = podObject('a', T0);
    const conditions = (sick['status'] as { conditions: Record<string, unknown>[] }).conditions;
    delete conditions[1]!['lastTransitionTime']; // another writer than the sidecar may leave it out
    t.kube.put(RESOURCES.pod, sick);
    t.kube.put(RESOURCES.pod, podObject('b', undefined));
    t.kube.put(RESOURCES.pod, podObject('c', undefined));
    expect(await t.controller.reconcile('team-a/demo')).toEqual({ requeue: 'after', delayMs: 30_000 });
    await t.clock.advance(20_000);
    expect(await t.controller.reconcile('team-a/demo')).toEqual({ requeue: 'after', delayMs: 10_000 });
    expect(t.evictions()).toEqual([]);
    await t.clock.advance(10_000);
    await t.controller.reconcile('team-a/demo');
    expect(t.evictions()).toEqual(['a']);
  });

  it('a PodDisruptionBudget refusal (429) comes back with backoff, is recorded once and never forced', async () => {
    const t = setup();
    t.kube.put(RESOURCES.pod, podObject('a', T0 - 40_000));
    t.kube.put(RESOURCES.pod, podObject('b', undefined));
    t.kube.put(RESOURCES.pod, podObject('c', undefined));
    t.kube.evictScript = () => {
      throw new KubeApiError(429, 'TooManyRequests', 'Cannot evict pod as it would violate the pod\'s disruption budget.', { method: 'POST', path: 'a' });
    };
    expect(await t.controller.reconcile('team-a/demo')).toEqual({ requeue: 'backoff', why: 'EvictionBlocked' });
    expect(await t.controller.reconcile('team-a/demo')).toEqual({ requeue: 'backoff', why: 'EvictionBlocked' });
    expect(t.evictions()).toEqual(['a', 'a']);
    expect(t.arcd().status?.remediations).toMatchObject([{ pod: 'a', result: 'Blocked' }]);
    expect(t.arcd().status?.remediationState?.evictionTimes ?? []).toEqual([]);
    expect(await counterValue(t, { result: 'blocked' })).toBe(2);
  });

  it('keeps the record of an eviction when the rest of the pass fails', async () => {
    const t = setup();
    t.kube.put(RESOURCES.pod, podObject('a', T0 - 40_000));
    t.kube.put(RESOURCES.pod, podObject('b', undefined));
    t.kube.put(RESOURCES.pod, podObject('c', undefined));
    t.kube.failGets = RESOURCES.secret;
    await expect(t.controller.reconcile('team-a/demo')).rejects.toThrow(/ECONNREFUSED/);
    expect(t.evictions()).toEqual(['a']);
    expect(t.arcd().status?.remediations).toMatchObject([{ pod: 'a', result: 'Evicted' }]);
    expect(t.arcd().status?.remediationState?.evictionTimes).toHaveLength(1);
  });

  it('records the eviction as Evicting, its time held in the hourly budget, before asking for it', async () => {
    const t = setup();
    t.kube.put(RESOURCES.pod, podObject('a', T0 - 40_000));
    t.kube.put(RESOURCES.pod, podObject('b', undefined));
    t.kube.put(RESOURCES.pod, podObject('c', undefined));
    const seen: unknown[] = [];
    t.kube.evictScript = () => {
      seen.push(structuredClone(t.arcd().status));
    };
    await t.controller.reconcile('team-a/demo');
    expect(seen).toMatchObject([{ remediations: [{ pod: 'a', result: 'Evicting' }], remediationState: { evictionTimes: ['2026-03-01T12:00:00Z'] } }]);
    expect(t.arcd().status?.remediations).toMatchObject([{ pod: 'a', result: 'Evicted' }]);
    expect(t.arcd().status?.remediations).toHaveLength(1);
  });

  it('a process killed between an eviction and its record: the next leader settles the record from the pod, and evicts nothing more', async () => {
    const t = setup();
    t.kube.put(RESOURCES.pod, podObject('a', T0 - 40_000));
    t.kube.put(RESOURCES.pod, podObject('b', T0 - 40_000));
    t.kube.put(RESOURCES.pod, podObject('c', undefined));
    // The eviction is made; the process dies before anything else happens.
    t.kube.evictScript = (ns, name) => {
      const pod = t.kube.read(RESOURCES.pod, ns, name)!;
      t.kube.put(RESOURCES.pod, { ...pod, metadata: { ...pod.metadata, deletionTimestamp: '2026-03-01T12:00:00Z' } });
      throw new Error('killed');
    };
    await expect(t.controller.reconcile('team-a/demo')).rejects.toThrow('killed');
    expect(t.arcd().status?.remediations).toMatchObject([{ pod: 'a', result: 'Evicting' }]);
    t.kube.evictScript = undefined;

    const next = t.controllerFor('op-2');
    t.clock.set(T0 + 8_000);
    await next.reconcile('team-a/demo');
    // a is going: b waits for maxUnavailable 1; the history and the budget hold a's eviction once.
    expect(t.evictions()).toEqual(['a']);
    expect(t.arcd().status?.remediations).toMatchObject([{ pod: 'a', result: 'Evicted', time: '2026-03-01T12:00:00Z' }]);
    expect(t.arcd().status?.remediations).toHaveLength(1);
    expect(t.arcd().status?.remediationState?.evictionTimes).toEqual(['2026-03-01T12:00:00Z']);
  });

  it('an eviction recorded but never asked for: the pod counts as going for a while, then the record says Failed, the budget is given back and the pod is evicted', async () => {
    const t = setup();
    t.kube.put(RESOURCES.pod, podObject('a', T0 - 40_000));
    t.kube.put(RESOURCES.pod, podObject('b', undefined));
    t.kube.put(RESOURCES.pod, podObject('c', undefined));
    t.kube.evictScript = () => {
      throw new Error('socket hang up'); // no answer: made or not, nobody knows yet
    };
    await expect(t.controller.reconcile('team-a/demo')).rejects.toThrow('socket hang up');
    t.kube.evictScript = undefined;
    t.clock.set(T0 + 10_000);
    const early = await t.controller.reconcile('team-a/demo');
    expect(t.evictions(), 'not asked again while the first call may still have gone through').toEqual(['a']);
    expect(early).toEqual({ requeue: 'after', delayMs: 20_000 });
    expect(t.arcd().status?.remediations).toMatchObject([{ pod: 'a', result: 'Evicting' }]);

    t.clock.set(T0 + 30_000);
    await t.controller.reconcile('team-a/demo');
    expect(t.evictions()).toEqual(['a', 'a']);
    expect(t.arcd().status?.remediations).toMatchObject([
      { pod: 'a', result: 'Failed', time: '2026-03-01T12:00:00Z' },
      { pod: 'a', result: 'Evicted', time: '2026-03-01T12:00:30Z' },
    ]);
    expect(t.arcd().status?.remediations?.[0]?.message).toMatch(/^not evicted/);
    expect(t.arcd().status?.remediationState?.evictionTimes).toEqual(['2026-03-01T12:00:30Z']);
  });

  it('the record written before the eviction and the unwritten outcome make one record once writes go through', async () => {
    const t = setup();
    t.kube.put(RESOURCES.pod, podObject('a', T0 - 40_000));
    t.kube.put(RESOURCES.pod, podObject('b', undefined));
    t.kube.put(RESOURCES.pod, podObject('c', undefined));
    // The API server goes away right after the eviction: the outcome cannot be written.
    t.kube.evictScript = () => {
      t.kube.down = true;
    };
    await expect(t.controller.reconcile('team-a/demo')).rejects.toThrow(/ECONNREFUSED/);
    expect(t.arcd().status?.remediations).toMatchObject([{ pod: 'a', result: 'Evicting' }]);
    t.kube.down = false;
    t.kube.evictScript = undefined;
    t.clock.set(T0 + 1_000);
    await t.controller.reconcile('team-a/demo');
    expect(t.evictions()).toEqual(['a']);
    expect(t.arcd().status?.remediations).toMatchObject([{ pod: 'a', result: 'Evicted', time: '2026-03-01T12:00:00Z' }]);
    expect(t.arcd().status?.remediations).toHaveLength(1);
    expect(t.arcd().status?.remediationState?.evictionTimes).toEqual(['2026-03-01T12:00:00Z']);
  });

  it('evicts nothing when it does not lead', async () => {
    const t = setup({ leader: false });
    t.kube.put(RESOURCES.pod, podObject('a', T0 - 40_000));
    t.kube.put(RESOURCES.pod, podObject('b', undefined));
    t.kube.put(RESOURCES.pod, podObject('c', undefined));
    await expect(t.controller.reconcile('team-a/demo')).rejects.toBeInstanceOf(NotLeaderError);
    expect(t.evictions()).toEqual([]);
  });
});

describe('Controller: arc_operator_storm, the series ArcRemediationStorm pages on', () => {
  async function stormValue(t: ReturnType<typeof setup>): Promise<number | undefined> {
    const { values } = await t.metrics.storm.get();
    return values.find((v) => v.labels.arcdeployment_namespace === 'team-a' && v.labels.arcdeployment === 'demo')?.value;
  }

  it('is 0 with 1 of 3 pods unhealthy, 1 with 3 of 3 (more than the default 50% = 2), and gone with the ArcDeployment', async () => {
    const t = setup();
    t.kube.put(RESOURCES.pod, podObject('a', T0 - 40_000));
    t.kube.put(RESOURCES.pod, podObject('b', undefined));
    t.kube.put(RESOURCES.pod, podObject('c', undefined));
    await t.controller.reconcile('team-a/demo');
    expect(await stormValue(t)).toBe(0);

    const s = setup();
    for (const name of ['a', 'b', 'c']) s.kube.put(RESOURCES.pod, podObject(name, T0 - 40_000));
    await s.controller.reconcile('team-a/demo');
    expect(s.evictions()).toEqual([]);
    expect(await stormValue(s)).toBe(1);

    s.kube.objects.delete([...s.kube.objects.keys()].find((k) => s.kube.objects.get(k)?.kind === 'ArcDeployment') ?? '');
    await s.controller.reconcile('team-a/demo');
    expect(await stormValue(s)).toBeUndefined();
  });
});
