// API-level faults against the real control plane (issue 8, part B). The operator runs in this
// process and talks to the real kube-apiserver through a fault-injecting HTTPS proxy on loopback
// (test/operator/fault-proxy.ts), which counts every request and, where the real API server will
// not produce a fault on demand, answers with one (a 429 with Retry-After, a 409 on the status
// write, the 429 of a disruption budget at its limit on eviction: the operator's own budget lets
// unready pods go) or writes lines into the operator's watch streams. Real sources first: another
// field manager fighting over the Deployment, pods whose condition flaps, odd conditions the API
// server accepts. In every test a
// monitor checks that pods down because of the operator never exceed maxUnavailable
// (fault-helpers' watchInvariant; watchDisruption below where pods are unready by their own doing).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpKubeClient, RESOURCES } from '../../operator/src/kube.ts';
import type { ArcDeployment, ArcDeploymentSpec, Condition, RemediationSpec } from '../../operator/src/types.ts';
import { eventually, useTestNamespace } from '../cluster/namespace.ts';
import { clusterDir, counter, createArcDeployment, installCrd, standInSidecars, startOperator } from './cluster-helpers.ts';
import type { RunningOperator } from './cluster-helpers.ts';
import { livePods, podPool, podReady, watchInvariant } from './fault-helpers.ts';
import { FaultProxy } from './fault-proxy.ts';
import type { ProxiedRequest } from './fault-proxy.ts';

const ns = useTestNamespace('arcd-faults-api');
let proxy: FaultProxy;
let op: RunningOperator;
const cleanups: (() => Promise<unknown>)[] = [];

const POOL = 'arcops.dev/PoolHealthy';
const core = () => ns.kc.makeApiClient(CoreV1Api);
const custom = () => ns.kc.makeApiClient(CustomObjectsApi);
const apps = () => ns.kc.makeApiClient(AppsV1Api);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const arcdPath = (name: string) => `/apis/arcops.dev/v1alpha1/namespaces/${ns.name}/arcdeployments/${name}`;
const deploymentPath = (name: string) => `/apis/apps/v1/namespaces/${ns.name}/deployments/${name}`;
const isEviction = (r: Pick<ProxiedRequest, 'method' | 'pathname'>) => r.method === 'POST' && r.pathname.startsWith(`/api/v1/namespaces/${ns.name}/pods/`) && r.pathname.endsWith('/eviction');
/** Requests that are neither watches nor the leader Lease's renewals: the operator's work. */
const isWork = (r: ProxiedRequest) => !r.watch && !r.pathname.includes('/leases');

async function arcd(name: string): Promise<ArcDeployment> {
  return (await custom().getNamespacedCustomObject({ group: 'arcops.dev', version: 'v1alpha1', namespace: ns.name, plural: 'arcdeployments', name })) as ArcDeployment;
}

function condition(a: ArcDeployment, type: string): Condition | undefined {
  return a.status?.conditions?.find((c) => c.type === type);
}

async function patchSpec(name: string, ops: { op: 'replace' | 'add'; path: string; value: unknown }[]): Promise<void> {
  await custom().patchNamespacedCustomObject({ group: 'arcops.dev', version: 'v1alpha1', namespace: ns.name, plural: 'arcdeployments', name, body: ops });
}

/** Occurrences of an Event on an ArcDeployment (repeats folded into `count` included). */
async function events(name: string, reason: string): Promise<number> {
  const list = await core().listNamespacedEvent({ namespace: ns.name });
  return list.items.filter((e) => e.reason === reason && e.involvedObject.kind === 'ArcDeployment' && e.involvedObject.name === name).reduce((n, e) => n + (e.count ?? 1), 0);
}

async function createArcd(name: string, replicas: number, remediation: RemediationSpec = {}, extra: Partial<ArcDeploymentSpec> = {}): Promise<void> {
  await core().createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: `${name}-tokens` }, stringData: { tokens: 'faults-api-test-token-123\n' } } });
  await createArcDeployment(ns.kc, ns.name, name, {
    replicas,
    apiTokenSecretRef: { name: `${name}-tokens` },
    remediation: { unhealthySeconds: 4, cooldownSeconds: 60, ...remediation },
    ...extra,
  });
}

/**
 * Creates an ArcDeployment, stands in for its sidecars (condition as `health` says, True by
 * default) and waits until every pod is Ready with a healthy pool and the status says so.
 */
async function rolledOut(name: string, replicas: number, remediation: RemediationSpec = {}, health?: Parameters<typeof standInSidecars>[3]): Promise<{ stop(): Promise<void> }> {
  await createArcd(name, replicas, remediation);
  const sidecars = standInSidecars(ns.kc, ns.name, name, health);
  cleanups.push(() => sidecars.stop());
  await eventually(
    `${replicas} pods of ${name} Ready with a healthy pool`,
    async () => {
      const live = await livePods(ns.kc, ns.name, name);
      const a = await arcd(name);
      return live.length === replicas && live.every((p) => podReady(p) && podPool(p)?.status === 'True') && a.status?.healthyReplicas === replicas;
    },
    { timeoutMs: 90_000 },
  );
  return sidecars;
}

/** Writes a pod's PoolHealthy condition the way the sidecar does (strategic merge on pods/status). */
async function setPool(pod: string, status: 'True' | 'False', reason: string, extra: Record<string, unknown> = { lastTransitionTime: new Date() }): Promise<void> {
  await core().patchNamespacedPodStatus(
    { name: pod, namespace: ns.name, body: { status: { conditions: [{ type: POOL, status, reason, message: 'set by faults-api.cluster.test.ts', ...extra }] } } },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
}

/** Gaps between consecutive times, in ms. */
function gaps(times: readonly number[]): number[] {
  return times.slice(1).map((t, i) => t - (times[i] ?? t));
}

/** Reconciles of one ArcDeployment so far. */
function reconciles(name: string): number {
  return op.reconciles.get(`${ns.name}/${name}`) ?? 0;
}

async function queueDepth(): Promise<number> {
  return (await op.metrics.queueDepth.get()).values[0]?.value ?? 0;
}

/**
 * The invariant for tests where pods flap on their own: kwok follows a pod's readiness gate with
 * a lag, so a pod that just turned healthy is briefly not Ready; that is the pod's own doing, not
 * the operator's (fault-helpers' watchInvariant would count it). Here pods down because of the
 * operator are those missing from `replicas` (evicted, being deleted) and replacements not yet
 * ready; pods that were there before the test started can only be made unavailable by an eviction.
 */
function watchDisruption(name: string, replicas: number, maxUnavailable: number, original: ReadonlySet<string>): { stop(): Promise<number> } {
  let running = true;
  let worst = 0;
  let samples = 0;
  const loop = (async () => {
    while (running) {
      try {
        const live = await livePods(ns.kc, ns.name, name);
        const fresh = live.filter((p) => !original.has(p.metadata?.uid ?? '') && !podReady(p) && podPool(p)?.status !== 'False');
        worst = Math.max(worst, Math.max(0, replicas - live.length) + fresh.length);
        samples++;
      } catch {
        // try again
      }
      await sleep(100);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      expect(samples, 'invariant samples').toBeGreaterThan(0);
      expect(worst, 'pods down because of the operator').toBeLessThanOrEqual(maxUnavailable);
      return worst;
    },
  };
}

/** Flips each pod True/False until `untilMs`, never False for longer than `maxFalseMs`; returns the writes made. */
async function flap(pods: readonly string[], untilMs: number, maxFalseMs: number): Promise<number> {
  let flips = 0;
  await Promise.all(
    pods.map(async (pod) => {
      let healthy = true;
      while (Date.now() < untilMs) {
        healthy = !healthy;
        await setPool(pod, healthy ? 'True' : 'False', healthy ? 'Healthy' : 'PendingTimeouts');
        flips++;
        await sleep(healthy ? 200 + Math.random() * 600 : 200 + Math.random() * (maxFalseMs - 200));
      }
      if (!healthy) {
        await setPool(pod, 'True', 'Healthy');
        flips++;
      }
    }),
  );
  return flips;
}

beforeAll(async () => {
  await installCrd();
  const certs = join(clusterDir(), 'certs');
  proxy = await FaultProxy.start(ns.kc, { cert: readFileSync(join(certs, 'apiserver.crt'), 'utf8'), key: readFileSync(join(certs, 'apiserver.key'), 'utf8') });
  // Resync every 10 min: a periodic pass would add attempts to the fault windows counted below.
  op = startOperator(proxy.kubeConfig(), ns.name, 'op-faults-api', { RESYNC_SECONDS: '600' });
  await eventually('the operator to lead', () => op.operator.isActing && op.operator.isReady);
});

afterEach(async () => {
  proxy.setRule(undefined);
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  await op?.stop();
  await proxy?.close();
});

describe('conflicts and throttling: retried with backoff, never a hot loop', () => {
  it('429 with Retry-After on the Deployment write: no retry before the server asked, the change lands once it stops', async () => {
    const name = 'throttled';
    await rolledOut(name, 2);
    const invariant = watchInvariant(ns, name, 2, 1);
    const path = deploymentPath(name);
    const isApply = (r: ProxiedRequest) => r.method === 'PATCH' && r.pathname === path;
    proxy.setRule((r) => (r.method === 'PATCH' && r.pathname === path ? { status: 429, headers: { 'retry-after': '2' } } : undefined));
    const t0 = Date.now();
    await patchSpec(name, [{ op: 'replace', path: '/spec/replicas', value: 3 }]);
    await sleep(9000);
    proxy.setRule(undefined);
    const attempts = proxy.requests.filter((r) => r.at >= t0 && isApply(r) && r.injected === 429).map((r) => r.at);
    // Retry-After 2 s over 9 s: at most 5 attempts (the own backoff alone would start at 0.5 s).
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts.length).toBeLessThanOrEqual(5);
    expect(Math.min(...gaps(attempts)), `gaps between attempts ${gaps(attempts).join(', ')} ms`).toBeGreaterThanOrEqual(1900);

    await eventually('the Deployment scaled to 3 once the throttling stopped', async () => (await apps().readNamespacedDeployment({ name, namespace: ns.name })).spec?.replicas === 3, { timeoutMs: 20_000 });
    await eventually('the status to describe generation 2', async () => {
      const a = await arcd(name);
      return a.status?.observedGeneration === a.metadata.generation;
    });
    await invariant.stop();
  });

  it('the API server throttling everything (429, Retry-After 1 s) with every watch cut: a few retries each, then all watches back and the change made meanwhile lands', async () => {
    const name = 'overload';
    await rolledOut(name, 2);
    const invariant = watchInvariant(ns, name, 2, 1);
    const watching = proxy.openWatches(() => true);
    // Not the Lease: an operator that cannot renew must stop acting, which is another test's fault.
    proxy.setRule((r) => (r.pathname.includes('/leases') ? undefined : { status: 429, headers: { 'retry-after': '1' } }));
    const errorsBefore = await counter(op.metrics, 'reconcileTotal', { result: 'error' });
    const t0 = Date.now();
    // The change reaches the operator on its open watch; its reconcile meets the 429s.
    await patchSpec(name, [{ op: 'replace', path: '/spec/replicas', value: 3 }]);
    await eventually('a reconcile refused', async () => (await counter(op.metrics, 'reconcileTotal', { result: 'error' })) > errorsBefore, { timeoutMs: 5000, intervalMs: 50 });
    expect(proxy.cutWatches()).toBe(watching);
    await sleep(Math.max(0, t0 + 6000 - Date.now()));
    proxy.setRule(undefined);
    const refused = proxy.count((r) => r.injected === 429, t0);
    const failedPasses = (await counter(op.metrics, 'reconcileTotal', { result: 'error' })) - errorsBefore;
    // Eight reflectors retrying 1 s doubling, and reconciles no sooner than Retry-After: a few
    // dozen requests in 6 s at most; a hot loop would be thousands.
    expect(refused, `${refused} refused requests in 6 s`).toBeLessThanOrEqual(40);
    expect(refused).toBeGreaterThanOrEqual(watching);
    expect(failedPasses, `${failedPasses} failed reconciles in 6 s`).toBeLessThanOrEqual(7);

    await eventually('every watch open again', () => proxy.openWatches(() => true) >= watching, { timeoutMs: 40_000 });
    await eventually('the scale to 3 made during the throttling reconciled', async () => {
      const d = await apps().readNamespacedDeployment({ name, namespace: ns.name });
      const a = await arcd(name);
      return d.spec?.replicas === 3 && a.status?.observedGeneration === a.metadata.generation;
    }, { timeoutMs: 30_000 });
    await invariant.stop();
  });

  it('409 on every status write: retried with a growing backoff, the status lands once it stops', async () => {
    const name = 'status-conflict';
    await rolledOut(name, 2);
    const invariant = watchInvariant(ns, name, 2, 1);
    const path = `${arcdPath(name)}/status`;
    proxy.setRule((r) => (r.method === 'PATCH' && r.pathname === path ? { status: 409 } : undefined));
    const errorsBefore = await counter(op.metrics, 'reconcileTotal', { result: 'error' });
    const t0 = Date.now();
    // A change that only the status shows (observedGeneration): nothing else moves meanwhile.
    await patchSpec(name, [{ op: 'replace', path: '/spec/remediation/cooldownSeconds', value: 61 }]);
    await sleep(8000);
    proxy.setRule(undefined);
    const attempts = proxy.requests.filter((r) => r.at >= t0 && r.pathname === path && r.injected === 409).map((r) => r.at);
    // Backoff 0.5 s doubling (+ up to 20 % jitter) over 8 s: 0, 0.5, 1.5, 3.5, 7.5 -> 4 to 6 tries.
    expect(attempts.length).toBeGreaterThanOrEqual(3);
    expect(attempts.length).toBeLessThanOrEqual(6);
    const g = gaps(attempts);
    expect(g.at(-1) ?? 0, `gaps ${g.join(', ')} ms`).toBeGreaterThanOrEqual(1900);
    expect(await counter(op.metrics, 'reconcileTotal', { result: 'error' })).toBe(errorsBefore + attempts.length);

    await eventually('the status to describe the new generation once the conflicts stopped', async () => {
      const a = await arcd(name);
      return a.status?.observedGeneration === a.metadata.generation;
    }, { timeoutMs: 20_000 });
    await invariant.stop();
  });

  it('another field manager fighting over the Deployment: one correction per change, quiet once it stops', async () => {
    const name = 'fight';
    await rolledOut(name, 2);
    const invariant = watchInvariant(ns, name, 2, 1);
    const fighter = new HttpKubeClient(ns.kc, { userAgent: 'faults-api-fighter' });
    cleanups.push(async () => fighter.close());
    const path = deploymentPath(name);
    const isOurWrite = (r: ProxiedRequest) => r.method === 'PATCH' && r.pathname === path;
    const driftBefore = await events(name, 'DriftCorrected');
    const t0 = Date.now();
    let writes = 0;
    while (Date.now() - t0 < 8000) {
      await fighter.apply(
        RESOURCES.deployment,
        { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: ns.name }, spec: { revisionHistoryLimit: 3 + (writes % 2) } },
        { fieldManager: 'faults-api-fighter', force: true },
      );
      writes++;
      await sleep(300);
    }
    const fought = proxy.count(isOurWrite, t0);
    expect(fought).toBeGreaterThanOrEqual(1);
    // One correction per change of the other writer at most (plus the one in flight): no loop.
    expect(fought).toBeLessThanOrEqual(writes + 1);

    await eventually('the declared revisionHistoryLimit back', async () => (await apps().readNamespacedDeployment({ name, namespace: ns.name })).spec?.revisionHistoryLimit === 10, { timeoutMs: 20_000 });
    expect(await events(name, 'DriftCorrected')).toBeGreaterThan(driftBefore);
    const settled = Date.now();
    await sleep(3000);
    expect(proxy.count((r) => isWork(r) && r.pathname.startsWith(`/apis/apps/v1/namespaces/${ns.name}/deployments`), settled)).toBe(0);
    await invariant.stop();
  });

  it('evictions refused with 429 (a disruption budget at its limit): retried with a growing backoff, never forced; the eviction goes once allowed', async () => {
    const name = 'pdb';
    const sick = new Set<string>();
    await rolledOut(name, 3, { maxUnavailable: 1, stormThreshold: 3, unhealthySeconds: 4 }, (p: V1Pod) =>
      sick.has(p.metadata?.name ?? '') ? { status: 'False', reason: 'PoolExhausted' } : { status: 'True', reason: 'Healthy' },
    );
    const invariant = watchInvariant(ns, name, 3, 1);
    const [a] = (await livePods(ns.kc, ns.name, name)).map((p) => p.metadata?.name ?? '').sort();
    const blockedBefore = await counter(op.metrics, 'remediationsTotal', { result: 'blocked' });
    const evictedBefore = await counter(op.metrics, 'remediationsTotal', { result: 'evicted' });
    // The operator's own budget lets a sick (unready) pod go at once (AlwaysAllow); a budget at
    // its limit answers like this (a Ready pod, or another budget's owner draining a node).
    proxy.setRule((r) =>
      isEviction(r)
        ? { status: 429, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'TooManyRequests', code: 429, message: "Cannot evict pod as it would violate the pod's disruption budget." } }
        : undefined,
    );
    sick.add(a ?? '');
    await eventually('a refused eviction', async () => (await counter(op.metrics, 'remediationsTotal', { result: 'blocked' })) > blockedBefore, { timeoutMs: 30_000 });
    const t0 = Date.now();
    await sleep(10_000);
    const tries = proxy.requests.filter((r) => r.at >= t0 && isEviction(r)).map((r) => r.at);
    // Backoff 0.5 s doubling to 8 s: a handful of tries in 10 s, not hundreds.
    expect(tries.length).toBeGreaterThanOrEqual(1);
    expect(tries.length).toBeLessThanOrEqual(6);
    expect((await livePods(ns.kc, ns.name, name)).length).toBe(3);
    expect(await counter(op.metrics, 'remediationsTotal', { result: 'evicted' })).toBe(evictedBefore);

    proxy.setRule(undefined);
    await eventually(`${a} evicted once the budget allows`, async () => !(await livePods(ns.kc, ns.name, name)).some((p) => p.metadata?.name === a), { timeoutMs: 40_000 });
    await eventually('the eviction counted', async () => (await counter(op.metrics, 'remediationsTotal', { result: 'evicted' })) === evictedBefore + 1, { timeoutMs: 5000 });
    await eventually('3 Ready pods again', async () => {
      const live = await livePods(ns.kc, ns.name, name);
      return live.length === 3 && live.every(podReady);
    }, { timeoutMs: 40_000 });
    expect(await counter(op.metrics, 'remediationsTotal', { result: 'evicted' })).toBe(evictedBefore + 1);
    await invariant.stop();
  });
});

describe('a flood of pod condition flips (flapping sidecars)', () => {
  it('pods flapping faster than unhealthySeconds: no eviction, bounded work, the storm guard as documented, the queue drains', async () => {
    const name = 'flap';
    const replicas = 6;
    const sidecars = await rolledOut(name, replicas, { unhealthySeconds: 5, stormCooldownSeconds: 3 });
    await sidecars.stop();
    const live = await livePods(ns.kc, ns.name, name);
    const pods = live.map((p) => p.metadata?.name ?? '');
    const uids = new Set(live.map((p) => p.metadata?.uid ?? ''));
    const invariant = watchDisruption(name, replicas, 0, uids);
    const evictedBefore = await counter(op.metrics, 'remediationsTotal', { result: 'evicted' });
    const reconcilesBefore = reconciles(name);
    const stormsBefore = await events(name, 'RemediationStorm');
    const t0 = Date.now();

    // All six False at once: more than stormThreshold (50 % of 6 = 3) tolerates, a storm for sure.
    await Promise.all(pods.map((p) => setPool(p, 'False', 'PoolExhausted')));
    await sleep(1000);
    let flips = pods.length;
    flips += await flap(pods, Date.now() + 14_000, 1200);
    const flapEnd = Date.now();

    await eventually('the queue drained, all pods healthy in status, remediation active again after the storm cooldown', async () => {
      const a = await arcd(name);
      const paused = condition(a, 'RemediationPaused');
      return (await queueDepth()) === 0 && a.status?.healthyReplicas === replicas && paused?.status === 'False' && paused.reason === 'Active';
    }, { timeoutMs: 30_000 });
    const work = reconciles(name) - reconcilesBefore;
    const seen = proxy.watchEvents.filter((e) => e.at >= t0 && e.pathname.includes(`/namespaces/${ns.name}/`)).length;
    const requests = proxy.count(isWork, t0);
    // Work follows the changes, never more: at most one reconcile per watch event (a flip is the
    // sidecar's write, kwok's Ready, the Deployment's counts, our status write) plus one when a
    // False pod would have become due; a few requests per flip (status write, Events).
    expect(work, `${work} reconciles for ${seen} watch events, ${flips} flips`).toBeLessThanOrEqual(seen + flips);
    expect(requests, `${requests} requests for ${flips} flips`).toBeLessThanOrEqual(4 * flips);
    expect(proxy.count(isEviction, t0)).toBe(0);
    expect(await counter(op.metrics, 'remediationsTotal', { result: 'evicted' })).toBe(evictedBefore);
    expect(await events(name, 'RemediationStorm')).toBeGreaterThan(stormsBefore);
    expect(await events(name, 'StormCleared')).toBeGreaterThanOrEqual(1);
    expect(await events(name, 'RemediationResumed')).toBeGreaterThanOrEqual(1);
    expect((await livePods(ns.kc, ns.name, name)).map((p) => p.metadata?.uid).every((u) => uids.has(u ?? ''))).toBe(true);

    // Quiet once the flapping stopped: past every requeue (unhealthySeconds), no work at all.
    await sleep(Math.max(0, flapEnd + 6000 - Date.now()));
    const quiet = Date.now();
    const reconcilesQuiet = reconciles(name);
    await sleep(3000);
    const late = proxy.requests.filter((r) => r.at >= quiet && isWork(r)).map((r) => `${r.method} ${r.pathname}`);
    expect(late).toEqual([]);
    expect(reconciles(name) - reconcilesQuiet).toBe(0);
    expect(await queueDepth()).toBe(0);
    await invariant.stop();
  });

  it('one pod stays False while the others flap: exactly that pod is evicted, once', async () => {
    const name = 'flap-one';
    const replicas = 4;
    const sidecars = await rolledOut(name, replicas, { unhealthySeconds: 4, stormThreshold: 4 });
    await sidecars.stop();
    const live = await livePods(ns.kc, ns.name, name);
    const [stuck, ...flappers] = live.map((p) => p.metadata?.name ?? '');
    const uids = new Set(live.map((p) => p.metadata?.uid ?? ''));
    const invariant = watchDisruption(name, replicas, 1, uids);
    const evictedBefore = await counter(op.metrics, 'remediationsTotal', { result: 'evicted' });
    const t0 = Date.now();
    await setPool(stuck ?? '', 'False', 'PoolExhausted');
    const flipped = flap(flappers, Date.now() + 10_000, 1500);
    let flips = 1;
    await eventually(`${stuck} evicted`, async () => !(await livePods(ns.kc, ns.name, name)).some((p) => p.metadata?.name === stuck), { timeoutMs: 20_000 });
    flips += await flipped;
    // Its replacement needs a healthy pool to become Ready: the stand-in takes over again.
    const healer = standInSidecars(ns.kc, ns.name, name);
    cleanups.push(() => healer.stop());
    await eventually(`${replicas} Ready pods again`, async () => {
      const now = await livePods(ns.kc, ns.name, name);
      return now.length === replicas && now.every(podReady);
    }, { timeoutMs: 40_000 });
    const evictions = proxy.requests.filter((r) => r.at >= t0 && isEviction(r)).map((r) => r.pathname.split('/')[6]);
    expect(new Set(evictions)).toEqual(new Set([stuck]));
    // An eviction that fails (429 while the stuck pod still shows Ready) is tried again on the
    // next change or after the backoff, never in a loop.
    expect(evictions.length, `${evictions.length} eviction requests for ${flips} flips`).toBeLessThanOrEqual(flips + 6);
    expect(await counter(op.metrics, 'remediationsTotal', { result: 'evicted' })).toBe(evictedBefore + 1);
    const after = (await livePods(ns.kc, ns.name, name)).map((p) => p.metadata?.name);
    for (const f of flappers) expect(after).toContain(f);
    await invariant.stop();
  });
});

describe('malformed or unexpected objects in the watch', () => {
  it('odd conditions the API server accepts (unknown reason and status, no lastTransitionTime, foreign types): reported, nothing breaks, later changes reconciled', async () => {
    const name = 'odd';
    const odd = new Map<string, { status: 'True' | 'False'; reason: string }>();
    const sidecars = await rolledOut(name, 3, { stormThreshold: 3 }, (p: V1Pod) => odd.get(p.metadata?.name ?? '') ?? { status: 'True', reason: 'Healthy' });
    const before = await livePods(ns.kc, ns.name, name);
    // p2's pool turns Unknown, so it is not Ready by its own doing: watchDisruption, not watchInvariant.
    const invariant = watchDisruption(name, 3, 1, new Set(before.map((p) => p.metadata?.uid ?? '')));
    const [p1, p2] = before.map((p) => p.metadata?.name ?? '').sort();
    const errorsBefore = await counter(op.metrics, 'reconcileTotal', { result: 'error' });
    await sidecars.stop();
    odd.set(p1 ?? '', { status: 'False', reason: 'NoSuchReason' });
    // A reason no sidecar writes, and no lastTransitionTime at all.
    await setPool(p1 ?? '', 'False', 'NoSuchReason', { lastTransitionTime: null });
    // status Unknown with a reason of its own, plus a condition type nobody here knows.
    await core().patchNamespacedPodStatus(
      {
        name: p2 ?? '',
        namespace: ns.name,
        body: { status: { conditions: [{ type: POOL, status: 'Unknown', reason: 'Maybe' }, { type: 'example.com/Other', status: 'False', reason: 'Whatever' }] } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    // Reported as they are: one pod healthy, the unknown reason named; no eviction of a pod whose
    // time of change is unknown (the planner cannot tell unhealthySeconds have passed).
    const degraded = await eventually('Degraded naming the unknown reason, 1 healthy pod', async () => {
      const a = await arcd(name);
      return condition(a, 'Degraded')?.reason === 'PodsUnhealthy' && a.status?.healthyReplicas === 1 ? a : false;
    }, { timeoutMs: 20_000 });
    expect(condition(degraded, 'Degraded')?.message).toContain('NoSuchReason');
    const stored = (await livePods(ns.kc, ns.name, name)).find((p) => p.metadata?.name === p1);
    expect(podPool(stored ?? {})).toMatchObject({ status: 'False', reason: 'NoSuchReason' });
    expect(stored?.status?.conditions?.find((c) => c.type === POOL)?.lastTransitionTime).toBeFalsy(); // null on the wire

    // A later valid change is reconciled.
    odd.set(p2 ?? '', { status: 'False', reason: 'Maybe' }); // the stand-in leaves p2 alone from now on
    const healer = standInSidecars(ns.kc, ns.name, name, (p: V1Pod) =>
      p.metadata?.name === p2 ? { status: (podPool(p)?.status ?? 'True') as 'True' | 'False', reason: podPool(p)?.reason ?? 'Healthy' } : (odd.get(p.metadata?.name ?? '') ?? { status: 'True', reason: 'Healthy' }),
    );
    cleanups.push(() => healer.stop());
    await patchSpec(name, [{ op: 'replace', path: '/spec/replicas', value: 4 }]);
    await eventually('the scale to 4 reconciled', async () => {
      const d = await apps().readNamespacedDeployment({ name, namespace: ns.name });
      const a = await arcd(name);
      return d.spec?.replicas === 4 && a.status?.observedGeneration === a.metadata.generation && a.status?.replicas === 4;
    }, { timeoutMs: 30_000 });
    expect(await counter(op.metrics, 'reconcileTotal', { result: 'error' })).toBe(errorsBefore);
    await invariant.stop();
  });

  it('garbage, unknown event types and objects missing fields in the watch streams: skipped, the watches go on', async () => {
    const name = 'junk';
    await rolledOut(name, 2);
    const invariant = watchInvariant(ns, name, 2, 1);
    const podWatch = (p: string) => p === `/api/v1/namespaces/${ns.name}/pods`;
    const arcdWatch = (p: string) => p === `/apis/arcops.dev/v1alpha1/namespaces/${ns.name}/arcdeployments`;
    const labels = { 'app.kubernetes.io/name': 'arc', 'app.kubernetes.io/instance': name, 'app.kubernetes.io/managed-by': 'arc-operator' };
    const pod = (podName: string, extra: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: podName, namespace: ns.name, uid: `uid-${podName}`, labels }, ...extra });
    const lines = [
      'this is not JSON {',
      JSON.stringify({ type: 'ADDED' }),
      JSON.stringify({ type: 'MODIFIED', object: { apiVersion: 'v1', kind: 'Pod' } }),
      JSON.stringify({ type: 'MODIFIED', object: null }),
      JSON.stringify({ type: 'SURPRISE', object: pod('phantom-surprise', { status: { phase: 'Running' } }) }),
      JSON.stringify({ type: 'ADDED', object: pod('phantom-no-status', {}) }),
      JSON.stringify({ type: 'ADDED', object: pod('phantom-bad-types', { spec: { containers: 'arc' }, status: { phase: 7, conditions: { type: POOL, status: 'False' } } }) }),
      JSON.stringify({ type: 'ADDED', object: pod('phantom-bad-condition', { status: { phase: 'Running', conditions: [null, 3, { type: POOL, status: 'False', lastTransitionTime: 'yesterday' }] } }) }),
    ];
    const restartsBefore = await counter(op.metrics, 'watchRestartsTotal', { resource: 'pods' });
    const errorsBefore = await counter(op.metrics, 'reconcileTotal', { result: 'error' });
    for (const line of lines) {
      await eventually('an open pod watch', () => proxy.openWatches(podWatch) > 0, { timeoutMs: 20_000, intervalMs: 50 });
      expect(proxy.injectWatchLine(podWatch, line)).toBeGreaterThan(0);
      await sleep(300);
    }
    await eventually('an open ArcDeployment watch', () => proxy.openWatches(arcdWatch) > 0, { timeoutMs: 20_000, intervalMs: 50 });
    proxy.injectWatchLine(arcdWatch, JSON.stringify({ type: 'ADDED', object: { apiVersion: 'arcops.dev/v1alpha1', kind: 'ArcDeployment', metadata: { name: 'ghost', namespace: ns.name }, spec: 'not an object' } }));
    proxy.injectWatchLine(arcdWatch, JSON.stringify({ type: 'MODIFIED', object: { apiVersion: 'arcops.dev/v1alpha1', kind: 'ArcDeployment', metadata: { name, namespace: ns.name, generation: 'one' }, spec: { replicas: 'many' }, status: { conditions: 'none' } } }));
    // The one valid lie (a pod that never existed, without status) is taken back the same way.
    await eventually('an open pod watch', () => proxy.openWatches(podWatch) > 0, { timeoutMs: 20_000, intervalMs: 50 });
    proxy.injectWatchLine(podWatch, JSON.stringify({ type: 'DELETED', object: pod('phantom-no-status', {}) }));
    await sleep(500);
    // Unreadable JSON ends the watch (as client-go's decoder does) and it is resumed; the rest is skipped.
    expect(await counter(op.metrics, 'watchRestartsTotal', { resource: 'pods' })).toBe(restartsBefore + 1);

    // The loop goes on: a later valid change is reconciled, from the watches the operator still has.
    await patchSpec(name, [{ op: 'replace', path: '/spec/replicas', value: 3 }]);
    await eventually('the scale to 3 reconciled, status true to the real pods', async () => {
      const d = await apps().readNamespacedDeployment({ name, namespace: ns.name });
      const a = await arcd(name);
      return d.spec?.replicas === 3 && a.status?.observedGeneration === a.metadata.generation && a.status?.healthyReplicas === 3;
    }, { timeoutMs: 30_000 });
    expect(await counter(op.metrics, 'reconcileTotal', { result: 'error' })).toBe(errorsBefore);
    await invariant.stop();
  });
});
