// Remediation end to end against the real control plane: the operator in this process, kwok pods,
// and the kubelet fixture (test/support/kubelet-fixture.ts) running the REAL service and the REAL
// sidecar for every Running pod, the sidecar writing the pod's arcops.dev/PoolHealthy through
// the kube-apiserver. Faults are made for real (slow queries holding the whole pool, a forbidden
// file in a pod's tree). In every test a monitor (fault-helpers.ts watchInvariant) checks that
// the pods down because of the operator (missing, or replacements not ready without an
// unhealthy pool of their own) never exceed maxUnavailable.
import { AppsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ArcDeployment, ArcDeploymentSpec, Condition, RemediationSpec } from '../../operator/src/types.ts';
import { eventually, useTestNamespace } from '../cluster/namespace.ts';
import { watchUntil } from '../cluster/watch.ts';
import { KubeletFixture } from '../support/kubelet-fixture.ts';
import { counter, createArcDeployment, installCrd, startOperator } from './cluster-helpers.ts';
import { watchInvariant } from './fault-helpers.ts';
import type { RunningOperator } from './cluster-helpers.ts';

const ns = useTestNamespace('arcd-remediation');
let op: RunningOperator;
const cleanups: (() => Promise<unknown>)[] = [];

const core = () => ns.kc.makeApiClient(CoreV1Api);
const custom = () => ns.kc.makeApiClient(CustomObjectsApi);
const POOL = 'arcops.dev/PoolHealthy';

async function arcd(name: string): Promise<ArcDeployment> {
  return (await custom().getNamespacedCustomObject({ group: 'arcops.dev', version: 'v1alpha1', namespace: ns.name, plural: 'arcdeployments', name })) as ArcDeployment;
}

function condition(a: ArcDeployment, type: string): Condition | undefined {
  return a.status?.conditions?.find((c) => c.type === type);
}

async function allPods(instance: string): Promise<V1Pod[]> {
  return (await core().listNamespacedPod({ namespace: ns.name, labelSelector: `app.kubernetes.io/name=arc,app.kubernetes.io/instance=${instance}` })).items;
}

async function livePods(instance: string): Promise<V1Pod[]> {
  return (await allPods(instance)).filter((p) => p.metadata?.deletionTimestamp === undefined);
}

const ready = (p: V1Pod): boolean => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const pool = (p: V1Pod) => p.status?.conditions?.find((c) => c.type === POOL);

async function events(reason: string, kind = 'ArcDeployment'): Promise<string[]> {
  const list = await core().listNamespacedEvent({ namespace: ns.name });
  return list.items.filter((e) => e.reason === reason && e.involvedObject.kind === kind).map((e) => `${e.involvedObject.name}: ${e.message ?? ''}`);
}

async function createArcd(name: string, replicas: number, remediation: RemediationSpec, extra: Partial<ArcDeploymentSpec> = {}): Promise<void> {
  await core()
    .createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: `${name}-tokens` }, stringData: { tokens: 'remediation-test-token-123\n' } } })
    .catch(() => undefined);
  await createArcDeployment(ns.kc, ns.name, name, {
    replicas,
    apiTokenSecretRef: { name: `${name}-tokens` },
    remediation: { unhealthySeconds: 2, cooldownSeconds: 60, ...remediation },
    ...extra,
  });
}

/** Runs the fixture for an ArcDeployment and waits until every pod is Ready with a healthy pool. */
async function runPods(name: string, replicas: number, options: Partial<ConstructorParameters<typeof KubeletFixture>[0]> = {}): Promise<KubeletFixture> {
  const fixture = new KubeletFixture({ kc: ns.kc, namespace: ns.name, instance: name, ...options }).start();
  cleanups.push(() => fixture.stop());
  await eventually(
    `${replicas} pods of ${name} Ready with a healthy pool`,
    async () => {
      const live = await livePods(name);
      const a = await arcd(name);
      return live.length === replicas && live.every((p) => ready(p) && pool(p)?.status === 'True') && a.status?.healthyReplicas === replicas;
    },
    { timeoutMs: 90_000 },
  );
  return fixture;
}

async function evictedTotal(result = 'evicted'): Promise<number> {
  return counter(op.metrics, 'remediationsTotal', { result });
}

beforeAll(async () => {
  await installCrd();
  op = startOperator(ns.kc, ns.name, 'op-remediation');
  await eventually('the operator to lead', () => op.operator.isActing && op.operator.isReady);
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  await op?.stop();
});

describe('remediation against the real control plane', () => {
  it('evicts the one pod whose real pool is exhausted; a replacement comes up; the others are untouched', async () => {
    const name = 'exhaust';
    await createArcd(name, 3, { maxUnavailable: 1 });
    const fixture = await runPods(name, 3);
    const before = await livePods(name);
    const victim = before[0]?.metadata?.name ?? '';
    const others = before.slice(1).map((p) => p.metadata?.uid);
    const evictedBefore = await evictedTotal();
    const invariant = watchInvariant(ns, name, 3, 1);

    fixture.exhaust(victim);
    const sick = await eventually(`${victim} to report PoolExhausted`, async () => {
      const p = (await livePods(name)).find((x) => x.metadata?.name === victim);
      return pool(p ?? {})?.status === 'False' ? p : false;
    });
    expect(pool(sick ?? {})?.reason).toMatch(/PoolExhausted|PendingTimeouts/);

    await eventually(`${victim} to be evicted and replaced by a Ready pod`, async () => {
      const live = await livePods(name);
      return live.length === 3 && !live.some((p) => p.metadata?.name === victim) && live.every((p) => ready(p) && pool(p)?.status === 'True');
    }, { timeoutMs: 60_000 });
    expect(await invariant.stop()).toBeLessThanOrEqual(1);

    const after = await livePods(name);
    for (const uid of others) expect(after.map((p) => p.metadata?.uid)).toContain(uid);
    expect(await evictedTotal()).toBe(evictedBefore + 1);
    const a = await arcd(name);
    expect(a.status?.remediations).toEqual([expect.objectContaining({ action: 'Evict', pod: victim, result: 'Evicted' })]);
    expect(a.status?.lastRemediationTime).toBeDefined();
    expect(a.status?.remediationState?.evictionTimes).toHaveLength(1);
    expect(await events('Evicted')).toEqual([expect.stringContaining(`evicted pod ${victim}`)]);
    expect(await events('Evicted', 'Pod')).toEqual([expect.stringContaining(victim)]);
    const latency = await op.metrics.remediationLatency.get();
    expect(latency.values.find((v) => v.metricName === 'arc_operator_remediation_latency_seconds_count')?.value).toBeGreaterThanOrEqual(1);
  });

  it('evicts nothing while every pod is unhealthy (storm), says so, and resumes after the storm cleared plus its cooldown', async () => {
    const name = 'storm';
    // unhealthySeconds 10: both sidecars judge their pool within that time even on a busy machine
    // (otherwise the first pod is, rightly, replaced before the second one turns unhealthy).
    await createArcd(name, 2, { stormCooldownSeconds: 3, unhealthySeconds: 10 });
    const fixture = await runPods(name, 2);
    const uids = (await livePods(name)).map((p) => p.metadata?.uid).sort();
    const evictedBefore = await evictedTotal();
    const invariant = watchInvariant(ns, name, 2, 1);

    const loads = [...fixture.pods.keys()].map((pod) => fixture.exhaust(pod));
    const storm = await eventually('the storm condition', async () => {
      const a = await arcd(name);
      return condition(a, 'RemediationPaused')?.reason === 'Storm' ? a : false;
    });
    expect(condition(storm, 'RemediationPaused')?.message).toContain('2 of 2 pods');
    // Until both pods are 2 s past unhealthySeconds (10 s), a watch on them sees none go.
    const falseSince = Math.max(...(await livePods(name)).map((p) => new Date(pool(p)?.lastTransitionTime ?? 0).getTime()));
    const going = await watchUntil<V1Pod>(
      ns.kc,
      `/api/v1/namespaces/${ns.name}/pods`,
      { labelSelector: `app.kubernetes.io/name=arc,app.kubernetes.io/instance=${name}` },
      (e) => e.type === 'DELETED' || e.object.metadata?.deletionTimestamp !== undefined,
      falseSince + 12_000,
    );
    expect(going.events.filter((e) => e.type === 'ADDED')).toHaveLength(2);
    expect(going.met, `a pod went during the storm: ${JSON.stringify(going.events.at(-1)?.object.metadata?.name)}`).toBe(false);
    expect((await livePods(name)).map((p) => p.metadata?.uid).sort()).toEqual(uids);
    expect(await events('RemediationStorm')).toHaveLength(1);

    await Promise.all(loads.map((l) => l.release()));
    await eventually('the storm to clear, then the cooldown to pass', async () => {
      const c = condition(await arcd(name), 'RemediationPaused');
      return c?.status === 'False' && c.reason === 'Active';
    }, { timeoutMs: 30_000 });
    expect(await events('StormCleared')).toHaveLength(1);
    expect((await livePods(name)).map((p) => p.metadata?.uid).sort()).toEqual(uids);
    expect(await evictedTotal()).toBe(evictedBefore);
    await invariant.stop();
  });

  it('DryRun: the same fault, nothing evicted, the intent reported', async () => {
    const name = 'dryrun';
    await createArcd(name, 2, { mode: 'DryRun' });
    const fixture = await runPods(name, 2);
    const uids = (await livePods(name)).map((p) => p.metadata?.uid).sort();
    const victim = [...fixture.pods.keys()][0] ?? '';
    const evictedBefore = await evictedTotal();
    fixture.exhaust(victim);
    const a = await eventually('the intent in the history', async () => {
      const x = await arcd(name);
      return x.status?.remediations?.some((r) => r.pod === victim && r.result === 'DryRun') ? x : false;
    }, { timeoutMs: 30_000 });
    expect(condition(a, 'RemediationPaused')).toMatchObject({ status: 'False', reason: 'DryRun' });
    expect(await events('WouldEvict')).toEqual([expect.stringContaining(victim)]);
    expect(await counter(op.metrics, 'remediationsTotal', { result: 'dry_run' })).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 3000));
    expect((await livePods(name)).map((p) => p.metadata?.uid).sort()).toEqual(uids);
    expect(await evictedTotal()).toBe(evictedBefore);
  });

  it('a forbidden file in a fresh pod of a new image: no eviction, Degraded names image and file, rolled back to the healthy image', async () => {
    const name = 'imagefault';
    const good = 'ghcr.io/arcops/arc-service:0.1.0';
    const bad = 'ghcr.io/arcops/arc-service:0.2.0-stale';
    await createArcd(name, 2, { rollbackOnImageFault: true });
    const imageOf = (p: V1Pod): string | undefined => p.spec?.containers.find((c) => c.name === 'arc')?.image;
    await runPods(name, 2, { filesFor: (p) => (imageOf(p) === bad ? ['app/api/duckdb_pool_simple.py'] : []) });
    await eventually('the healthy image to be remembered', async () => (await arcd(name)).status?.remediationState?.lastHealthyImage === good);
    const evictedBefore = await evictedTotal();
    const invariant = watchInvariant(ns, name, 2, 1);

    await custom().patchNamespacedCustomObject({ group: 'arcops.dev', version: 'v1alpha1', namespace: ns.name, plural: 'arcdeployments', name, body: [{ op: 'replace', path: '/spec/image', value: bad }] });
    const faulted = await eventually('Degraded ImageFault', async () => {
      const a = await arcd(name);
      return condition(a, 'Degraded')?.reason === 'ImageFault' ? a : false;
    }, { timeoutMs: 60_000 });
    const message = condition(faulted, 'Degraded')?.message ?? '';
    expect(message).toContain(bad);
    expect(message).toContain('api/duckdb_pool_simple.py');
    await eventually('the Deployment rolled back to the healthy image', async () => {
      const d = await ns.kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ name, namespace: ns.name });
      return d.spec?.template.spec?.containers.find((c) => c.name === 'arc')?.image === good;
    });
    await eventually('only pods of the healthy image, all Ready', async () => {
      const live = await livePods(name);
      return live.length === 2 && live.every((p) => imageOf(p) === good && ready(p));
    }, { timeoutMs: 60_000 });
    const a = await arcd(name);
    expect(a.status?.remediationState?.rolledBackTo).toBe(good);
    expect(a.status?.remediations?.map((r) => `${r.action}:${r.result}`)).toEqual(['Skip:ImageFault', 'Rollback:RolledBack']);
    expect(await events('ImageFault')).toHaveLength(1);
    expect(await events('RolledBack')).toHaveLength(1);
    expect(await evictedTotal()).toBe(evictedBefore);
    await invariant.stop();
  });

  it('a forbidden file in a fresh pod, rollback not allowed: the pod is never evicted, the rollout holds, Degraded names image and file', async () => {
    const name = 'imagefault-stay';
    const bad = 'ghcr.io/arcops/arc-service:0.3.0-stale';
    await createArcd(name, 2, {});
    const imageOf = (p: V1Pod): string | undefined => p.spec?.containers.find((c) => c.name === 'arc')?.image;
    await runPods(name, 2, { filesFor: (p) => (imageOf(p) === bad ? ['app/api/__pycache__/duckdb_pool_simple.cpython-311.pyc'] : []) });
    const evictedBefore = await evictedTotal();
    const invariant = watchInvariant(ns, name, 2, 1);
    await custom().patchNamespacedCustomObject({ group: 'arcops.dev', version: 'v1alpha1', namespace: ns.name, plural: 'arcdeployments', name, body: [{ op: 'replace', path: '/spec/image', value: bad }] });
    const faulted = await eventually('Degraded ImageFault', async () => {
      const a = await arcd(name);
      return condition(a, 'Degraded')?.reason === 'ImageFault' ? a : false;
    }, { timeoutMs: 60_000 });
    expect(condition(faulted, 'Degraded')?.message).toContain(bad);
    expect(condition(faulted, 'Degraded')?.message).toContain('duckdb_pool_simple.cpython-311.pyc');
    const faulty = (await livePods(name)).filter((p) => imageOf(p) === bad).map((p) => p.metadata?.uid);
    expect(faulty).toHaveLength(1);
    // Far past unhealthySeconds (2 s): the faulty pod stays (no eviction loop), the old pods serve.
    await new Promise((r) => setTimeout(r, 6000));
    const live = await livePods(name);
    expect(live.filter((p) => imageOf(p) === bad).map((p) => p.metadata?.uid)).toEqual(faulty);
    expect(live.filter((p) => imageOf(p) !== bad && ready(p))).toHaveLength(2);
    expect(await evictedTotal()).toBe(evictedBefore);
    const a = await arcd(name);
    expect(a.status?.remediations?.map((r) => `${r.action}:${r.result}`)).toEqual(['Skip:ImageFault']);
    expect(a.status?.remediationState?.rolledBackTo).toBeUndefined();
    await invariant.stop();
  });

  it('two pools exhausted at once: both pods are replaced, one at a time, and the PodDisruptionBudget refuses neither', async () => {
    const name = 'pdb';
    // unhealthySeconds 6: both pools are judged unhealthy before either pod becomes a candidate.
    await createArcd(name, 3, { maxUnavailable: 1, stormThreshold: 3, unhealthySeconds: 6 });
    const fixture = await runPods(name, 3);
    const [a1, b1, c1] = [...fixture.pods.keys()];
    const evictedBefore = await evictedTotal();
    const blockedBefore = await evictedTotal('blocked');
    const invariant = watchInvariant(ns, name, 3, 1);
    fixture.exhaust(a1 ?? '');
    fixture.exhaust(b1 ?? '');
    // Two pods unready at once. With unhealthyPodEvictionPolicy IfHealthyBudget the budget
    // refused both evictions for as long as both stayed sick; now the planner takes them in turn.
    await eventually(
      'both sick pods replaced, 3 Ready pods with healthy pools',
      async () => {
        const live = await livePods(name);
        const names = live.map((p) => p.metadata?.name);
        return !names.includes(a1) && !names.includes(b1) && live.length === 3 && live.every((p) => ready(p) && pool(p)?.status === 'True');
      },
      { timeoutMs: 120_000 },
    );
    await eventually('both evictions counted', async () => (await evictedTotal()) >= evictedBefore + 2, { timeoutMs: 5000 });
    expect(await evictedTotal()).toBe(evictedBefore + 2);
    expect(await evictedTotal('blocked')).toBe(blockedBefore);
    expect((await livePods(name)).some((p) => p.metadata?.name === c1)).toBe(true);
    const evicted = (await arcd(name)).status?.remediations?.filter((r) => r.result === 'Evicted').map((r) => r.pod) ?? [];
    expect(evicted.sort()).toEqual([a1, b1].sort());
    expect(await invariant.stop()).toBeLessThanOrEqual(1);
  });

  it('an operator restarted mid-remediation does not evict again: the hourly budget lives in status', async () => {
    const name = 'restart';
    await createArcd(name, 3, { maxUnavailable: 1, stormThreshold: 3, maxPerHour: 1 });
    const fixture = await runPods(name, 3);
    const [a1, b1] = [...fixture.pods.keys()];
    const invariant = watchInvariant(ns, name, 3, 1);
    fixture.exhaust(a1 ?? '');
    const first = await eventually('one eviction', async () => {
      const x = await arcd(name);
      return x.status?.remediations?.find((r) => r.result === 'Evicted');
    }, { timeoutMs: 30_000 });
    expect(first.pod).toBe(a1);

    // Restart while the replacement is still coming up: a new operator (fresh caches and memory).
    await op.stop();
    op = startOperator(ns.kc, ns.name, 'op-remediation-2');
    await eventually('the new operator to lead', () => op.operator.isActing && op.operator.isReady, { timeoutMs: 30_000 });
    await eventually('the replacement Ready', async () => {
      const live = await livePods(name);
      return live.length === 3 && live.every((p) => ready(p));
    }, { timeoutMs: 60_000 });
    fixture.exhaust(b1 ?? '');
    const limited = await eventually('RateLimited', async () => {
      const x = await arcd(name);
      return condition(x, 'RemediationPaused')?.reason === 'RateLimited' ? x : false;
    }, { timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 4000));
    const evicted = (await arcd(name)).status?.remediations?.filter((r) => r.result === 'Evicted') ?? [];
    expect(evicted).toEqual([first]);
    expect(await evictedTotal()).toBe(0);
    expect((await livePods(name)).some((p) => p.metadata?.name === b1)).toBe(true);
    expect(condition(limited, 'RemediationPaused')?.message).toContain('maxPerHour 1');
    await invariant.stop();
  });
});
