// Control-plane and operator-process faults (issue 8), against the real control plane, with the
// operator as a real child process (node operator/src/main.ts): the kube-apiserver restarted in
// the middle of a remediation, etcd stopped for 30 s, the status write that records an eviction
// refused, and the leader killed with SIGKILL in the middle of a remediation with a standby
// ready. Throughout each, a watcher checks that the pods down because of the operator never
// exceed maxUnavailable. kwok runs no containers, so a stand-in plays the sidecars (it writes
// each pod's arcops.dev/PoolHealthy).
//
// Note: these tests stop and restart components of the cluster under test (kube-apiserver,
// etcd) through their pid files and hack/cluster/up.sh; cluster-tier files run one at a time, so
// no other test file is affected. To keep them off a shared cluster, run them on a private one
// (docs/cluster.md: ARC_CLUSTER_DIR and the ARC_*_PORT variables).
import { appendFileSync } from 'node:fs';
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ArcDeployment, RemediationRecord, RemediationSpec } from '../../operator/src/types.ts';
import { eventually, useTestNamespace } from '../cluster/namespace.ts';
import { FAST_OPERATOR_ENV, createArcDeployment, installCrd, kubectl, restartApiServer, standInSidecars, startMissingComponents, stopComponent } from './cluster-helpers.ts';
import { livePods, metricValue, podPool, podReady, spawnOperator, watchInvariant } from './fault-helpers.ts';
import type { OperatorProcess } from './fault-helpers.ts';

const ns = useTestNamespace('arcd-faults-cp');
const LEASE_SECONDS = Number(FAST_OPERATOR_ENV.LEASE_DURATION_SECONDS);
const RENEW_DEADLINE_SECONDS = Number(FAST_OPERATOR_ENV.LEASE_RENEW_DEADLINE_SECONDS);
const cleanups: (() => Promise<unknown>)[] = [];

const custom = () => ns.kc.makeApiClient(CustomObjectsApi);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const names = (pods: V1Pod[]): string[] => pods.map((p) => p.metadata?.name ?? '');

async function arcd(name: string): Promise<ArcDeployment> {
  return (await custom().getNamespacedCustomObject({ group: 'arcops.dev', version: 'v1alpha1', namespace: ns.name, plural: 'arcdeployments', name })) as ArcDeployment;
}

async function createArcd(name: string, replicas: number, remediation: RemediationSpec = {}): Promise<void> {
  await createArcDeployment(ns.kc, ns.name, name, {
    replicas,
    apiTokenSecretRef: { name: 'arc-tokens' },
    remediation: { unhealthySeconds: 2, cooldownSeconds: 60, maxUnavailable: 1, ...remediation },
  });
}

async function deploymentReplicas(name: string): Promise<number | undefined> {
  const out = await kubectl(['-n', ns.name, 'get', 'deployment', name, '-o', 'jsonpath={.spec.replicas}']).catch(() => '');
  return out === '' ? undefined : Number(out);
}

/** Stand-in sidecars for an ArcDeployment: pods named in `sick` report PoolExhausted. */
function sidecars(instance: string, sick: Set<string>): void {
  const s = standInSidecars(ns.kc, ns.name, instance, (pod) =>
    sick.has(pod.metadata?.name ?? '') ? { status: 'False', reason: 'PoolExhausted' } : { status: 'True', reason: 'Healthy' },
  );
  cleanups.push(() => s.stop());
}

/** Waits until `replicas` live pods are all Ready with a healthy pool, none of them in `not`. */
async function settled(instance: string, replicas: number, not: readonly string[] = [], timeoutMs = 90_000): Promise<V1Pod[]> {
  return eventually(
    `${replicas} pods of ${instance} Ready with a healthy pool`,
    async () => {
      const live = await livePods(ns.kc, ns.name, instance);
      const ok = live.length === replicas && live.every((p) => podReady(p) && podPool(p)?.status === 'True' && !not.includes(p.metadata?.name ?? ''));
      return ok && (await arcd(instance)).status?.healthyReplicas === replicas ? live : false;
    },
    { timeoutMs },
  );
}

/**
 * Makes the pods' pools go bad one after another: the first now, each next one as soon as the
 * one before is seen evicted (while its replacement is still coming up), so that the leader is
 * always in the middle of a remediation when it is killed.
 */
function sickInTurn(pods: readonly string[], sick: Set<string>, gone: () => readonly string[]): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    for (const pod of pods) {
      sick.add(pod);
      while (running && !gone().includes(pod)) await sleep(50);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

function evicted(a: ArcDeployment): RemediationRecord[] {
  return a.status?.remediations?.filter((r) => r.action === 'Evict' && r.result === 'Evicted') ?? [];
}

/** The operator's Evicted Events on the ArcDeployment, with their repeat counts. */
async function evictedEvents(instance: string): Promise<{ message: string; count: number }[]> {
  const list = await ns.kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: ns.name });
  return list.items
    .filter((e) => e.reason === 'Evicted' && e.involvedObject.kind === 'ArcDeployment' && e.involvedObject.name === instance)
    .map((e) => ({ message: e.message ?? '', count: e.count ?? 1 }));
}

async function leaseHolder(): Promise<string | undefined> {
  const lease = await ns.kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'arc-operator-leader', namespace: ns.name });
  return lease.spec?.holderIdentity ?? undefined;
}

/** An operator child process, stopped after the test; ARC_OPERATOR_TEST_LOG=file keeps its log. */
async function operator(identity: string): Promise<OperatorProcess> {
  const op = await spawnOperator(ns.name, identity);
  cleanups.push(async () => {
    await op.stop();
    const file = process.env['ARC_OPERATOR_TEST_LOG'];
    if (file) appendFileSync(file, op.logs.map((l) => `${JSON.stringify({ test: identity, ...l })}\n`).join(''));
  });
  return op;
}

/** Asserts the history holds exactly one eviction record per pod in `pods`, and nothing else. */
async function expectEvictedOnce(instance: string, pods: readonly string[]): Promise<void> {
  const a = await arcd(instance);
  expect(evicted(a).map((r) => r.pod).sort(), `eviction records in status.remediations ${JSON.stringify(a.status?.remediations)}`).toEqual([...pods].sort());
  expect(a.status?.remediationState?.evictionTimes, 'status.remediationState.evictionTimes').toHaveLength(pods.length);
  const events = await evictedEvents(instance);
  expect(events.filter((e) => e.count !== 1), 'Evicted Events repeated').toEqual([]);
  for (const pod of pods) expect(events.filter((e) => e.message.includes(`evicted pod ${pod}`))).toHaveLength(1);
}

/**
 * Makes the real API server refuse every status write of the namespace's ArcDeployments (a
 * ValidatingAdmissionPolicy: what an API server that lost its storage right after an eviction
 * does to the write that should record it, but on cue), except those for which the CEL
 * expression `allowed` holds. Resolves once a write is refused.
 */
async function refuseStatusWrites(probe: string, allowed = 'false'): Promise<() => Promise<void>> {
  const name = `${ns.name}-refuse-status`;
  const manifests = [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: { resourceRules: [{ apiGroups: ['arcops.dev'], apiVersions: ['*'], operations: ['UPDATE'], resources: ['arcdeployments/status'] }] },
        validations: [{ expression: allowed, message: 'status writes refused by the fault test' }],
      },
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name },
      spec: { policyName: name, validationActions: ['Deny'], matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns.name } } } },
    },
  ];
  await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }));
  await eventually('status writes to be refused', async () => {
    const tried = await kubectl(['-n', ns.name, 'patch', 'arcd', probe, '--subresource=status', '--type=merge', '-p', '{"status":{"replicas":0}}']).then(
      () => 'written',
      (err: unknown) => String(err),
    );
    return tried.includes('status writes refused by the fault test');
  }, { timeoutMs: 30_000, intervalMs: 500 });
  return async () => {
    await kubectl(['delete', '--ignore-not-found', 'validatingadmissionpolicybinding', name]);
    await kubectl(['delete', '--ignore-not-found', 'validatingadmissionpolicy', name]);
  };
}

beforeAll(async () => {
  await installCrd();
  await ns.kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: 'arc-tokens' }, stringData: { tokens: 'faults-test-token-123\n' } } });
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  // Whatever a failed test left stopped is started again for the next file.
  await startMissingComponents();
});

describe('control-plane faults', () => {
  it('API server restarted mid-remediation: watches resume, changes made around the restart are acted on, no action is repeated', async () => {
    const op = await operator('op-apiserver');
    await eventually('the operator to lead', async () => (await op.metric('arc_operator_leader')) === 1);
    const sick = new Set<string>();
    await createArcd('mid', 3);
    await createArcd('side', 1);
    sidecars('mid', sick);
    const [a, b] = names(await settled('mid', 3));
    await eventually('the Deployment of side', async () => (await deploymentReplicas('side')) === 1);
    const invariant = watchInvariant(ns, 'mid', 3, 1);

    // Two pools go bad, the second as soon as the first pod is evicted: it waits (maxUnavailable
    // 1) until the first one's replacement is Ready, while the API server restarts.
    sick.add(a ?? '');
    await eventually(`${a} evicted`, () => invariant.gone.includes(a ?? ''), { timeoutMs: 30_000, intervalMs: 50 });
    sick.add(b ?? '');
    const restartsBefore = await op.metric('arc_operator_watch_restarts_total');
    // A change just before the API server goes away (its watch event may never reach the operator)...
    await createArcd('before-restart', 1);
    expect(invariant.gone, 'the second pod is still there when the API server goes down').toEqual([a]);
    const { downMs } = await restartApiServer();
    // ...and one as soon as it is back, while the operator's watches are still reconnecting.
    await kubectl(['-n', ns.name, 'scale', 'arcd', 'side', '--replicas=2']);

    await eventually('the Deployment of the ArcDeployment created before the restart', () => deploymentReplicas('before-restart'), { timeoutMs: 60_000 });
    await eventually('side scaled to 2', async () => (await deploymentReplicas('side')) === 2, { timeoutMs: 60_000 });
    // The remediation goes on: the second pod goes once the first one's replacement is Ready.
    // (Not waited for: its own replacement, which the kube-controller-manager sometimes makes
    // only a minute after an API server restart.)
    await eventually(`${b} evicted`, () => invariant.gone.includes(b ?? ''), { timeoutMs: 60_000, intervalMs: 100 });
    await eventually('both evictions recorded', async () => evicted(await arcd('mid')).length >= 2, { timeoutMs: 30_000 });
    await sleep(3000); // time for a wrong second eviction or a duplicate record to show
    expect(await invariant.stop()).toBeLessThanOrEqual(1);

    expect(op.exited, 'the operator process exited').toBe(false);
    expect(await op.metric('arc_operator_watch_restarts_total')).toBeGreaterThan(restartsBefore);
    // Exactly the two sick pods went, each once; no replacement was touched.
    expect([...invariant.gone].sort()).toEqual([a, b].sort());
    expect(invariant.gone[0]).toBe(a);
    expect(await op.metric('arc_operator_remediations_total', { result: 'evicted' })).toBe(2);
    await expectEvictedOnce('mid', [a ?? '', b ?? '']);
    process.stderr.write(`[faults] kube-apiserver down and back in ${downMs} ms\n`);
  });

  it('etcd stopped for 30 s: the operator stays alive and healthy, says it cannot lead, and recovers by itself', async () => {
    const op = await operator('op-etcd');
    await eventually('the operator to lead', async () => (await op.metric('arc_operator_leader')) === 1);
    const sick = new Set<string>();
    await createArcd('etcd', 3);
    sidecars('etcd', sick);
    await settled('etcd', 3);
    const invariant = watchInvariant(ns, 'etcd', 3, 1);
    const lostBefore = await op.metric('arc_operator_leader_transitions_total', { event: 'lost' });
    // The last contact advances while all is well (one Lease read a second).
    expect(await op.metric('arc_operator_lease_contact_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 3);

    await stopComponent('etcd');
    const stoppedAt = Date.now();
    const samples: { t: number; healthz: number; metrics: number; leader: number; contact: number }[] = [];
    while (Date.now() - stoppedAt < 30_000) {
      const healthz = await op.http('/healthz');
      const metrics = await op.http('/metrics');
      expect(op.exited, 'the operator process exited during the etcd outage').toBe(false);
      const value = (name: string): number => metricValue(metrics.body, name);
      samples.push({ t: Date.now() - stoppedAt, healthz: healthz.status, metrics: metrics.status, leader: value('arc_operator_leader'), contact: value('arc_operator_lease_contact_timestamp_seconds') });
      await sleep(1000);
    }
    await startMissingComponents();
    const back = Date.now();
    expect(await kubectl(['get', '--raw', '/readyz'])).toBe('ok');

    // Alive and live all along: a liveness probe would not have restarted it.
    expect(samples.length).toBeGreaterThanOrEqual(20);
    expect(samples.filter((s) => s.healthz !== 200 || s.metrics !== 200)).toEqual([]);
    // What it reported: it stopped acting once it could not renew its Lease (no writes from a
    // leader that may be deposed), and its last contact with the API server stood still.
    const notLeading = samples.find((s) => s.leader === 0);
    expect(notLeading, 'arc_operator_leader went to 0').toBeDefined();
    expect(notLeading?.t).toBeLessThanOrEqual((RENEW_DEADLINE_SECONDS + 3) * 1000);
    expect(Math.max(...samples.map((s) => s.contact))).toBeLessThanOrEqual(stoppedAt / 1000 + 1);
    expect(await op.metric('arc_operator_leader_transitions_total', { event: 'lost' })).toBe(lostBefore + 1);
    expect(op.logs.some((l) => l['msg'] === 'stopped leading' && String(l['why']).includes('could not renew the lease'))).toBe(true);

    // Recovered by itself (same process): leading again, and acting.
    await eventually('the operator to lead again', async () => (await op.metric('arc_operator_leader')) === 1, { timeoutMs: 60_000 });
    process.stderr.write(`[faults] etcd stopped 30 s; control plane back (up.sh done) ${back - stoppedAt} ms after the stop; the operator led again ${Date.now() - back} ms later\n`);
    await eventually('the last contact to advance again', async () => (await op.metric('arc_operator_lease_contact_timestamp_seconds')) > Date.now() / 1000 - 3, { timeoutMs: 10_000 });
    await createArcd('after-etcd', 1);
    await eventually('the Deployment of an ArcDeployment created after recovery', () => deploymentReplicas('after-etcd'), { timeoutMs: 60_000 });
    const victim = names(await livePods(ns.kc, ns.name, 'etcd'))[0] ?? '';
    sick.add(victim);
    await settled('etcd', 3, [victim], 60_000);
    expect(await invariant.stop()).toBeLessThanOrEqual(1);
    expect(invariant.gone).toEqual([victim]);
    await expectEvictedOnce('etcd', [victim]);
    expect(op.exited).toBe(false);
    expect(await op.metric('arc_operator_leader_transitions_total', { event: 'acquired' })).toBe(2);
  });

  it('the status write after an eviction refused: the record is kept and written once writes go through', async () => {
    const op = await operator('op-record');
    await eventually('the operator to lead', async () => (await op.metric('arc_operator_leader')) === 1);
    const sick = new Set<string>();
    await createArcd('record', 3);
    await createArcd('record-probe', 1);
    sidecars('record', sick);
    const victim = names(await settled('record', 3))[0] ?? '';
    const invariant = watchInvariant(ns, 'record', 3, 1);
    const allow = await refuseStatusWrites('record-probe');
    cleanups.push(allow);

    sick.add(victim);
    await eventually(`${victim} evicted`, () => invariant.gone.includes(victim), { timeoutMs: 30_000, intervalMs: 50 });
    // The replacement comes up; the pod is gone from the operator's cache, so only a record of
    // the eviction can tell it (or a new leader) that it happened.
    await eventually('the replacement Ready', async () => {
      const live = await livePods(ns.kc, ns.name, 'record');
      return live.length === 3 && live.every((p) => podReady(p) && p.metadata?.name !== victim);
    }, { timeoutMs: 60_000 });
    await sleep(2000);
    expect(evicted(await arcd('record')), 'nothing can have been written meanwhile').toEqual([]);
    expect(op.logs.some((l) => l['msg'] === 'status write failed')).toBe(true);

    await allow();
    await eventually('the eviction recorded in status', async () => evicted(await arcd('record')).length > 0, { timeoutMs: 30_000 });
    await sleep(2000);
    expect(await invariant.stop()).toBeLessThanOrEqual(1);
    expect(invariant.gone).toEqual([victim]);
    await expectEvictedOnce('record', [victim]);
  });

  it('the leader killed with SIGKILL mid-remediation, before it could record the outcome of its eviction: the standby takes over within the lease time, finishes one pod at a time, and the history is whole', async () => {
    const ops = [await operator('op-kill-a'), await operator('op-kill-b')];
    const leading = async (): Promise<OperatorProcess[]> => {
      const flags = await Promise.all(ops.map((o) => o.metric('arc_operator_leader')));
      return ops.filter((_, i) => flags[i] === 1);
    };
    const [leader] = await eventually('exactly one leader', async () => ((await leading()).length === 1 ? leading() : false));
    const standby = ops.find((o) => o !== leader);
    if (leader === undefined || standby === undefined) throw new Error('no leader and standby');
    expect(await leaseHolder()).toBe(leader.identity);

    const sick = new Set<string>();
    await createArcd('kill', 4);
    await createArcd('kill-probe', 1);
    sidecars('kill', sick);
    const pods = names(await settled('kill', 4)).slice(0, 3);
    const invariant = watchInvariant(ns, 'kill', 4, 1);
    // The leader may record an eviction it is about to ask for, not its outcome: the kill below
    // then always falls between the eviction and the record of how it went.
    const allow = await refuseStatusWrites('kill-probe', "has(object.status.remediations) && object.status.remediations.exists(r, has(r.result) && r.result == 'Evicting')");
    cleanups.push(allow);
    const turns = sickInTurn(pods, sick, () => invariant.gone);
    cleanups.push(() => turns.stop());

    await eventually('the first eviction', () => invariant.gone.length > 0, { timeoutMs: 30_000, intervalMs: 50 });
    const first = invariant.gone[0] ?? '';
    await eventually('the leader to fail to record its outcome', () => leader.logs.some((l) => l['msg'] === 'status write failed'), { timeoutMs: 10_000, intervalMs: 50 });
    expect(evicted(await arcd('kill')), 'the outcome cannot have been written').toEqual([]);
    expect((await arcd('kill')).status?.remediations, 'the eviction recorded before it was asked for').toMatchObject([{ pod: first, result: 'Evicting' }]);
    const killedAt = Date.now();
    await leader.kill();
    await allow();
    await eventually('the standby to lead', async () => (await standby.metric('arc_operator_leader')) === 1, { timeoutMs: 30_000, intervalMs: 100 });
    const takeoverMs = Date.now() - killedAt;
    // The Lease runs out LEASE_SECONDS after the dead leader's last renewal; the standby looks every ~1 s.
    expect(takeoverMs).toBeLessThanOrEqual((LEASE_SECONDS + 3) * 1000);
    expect(await leaseHolder()).toBe(standby.identity);

    await settled('kill', 4, pods, 90_000);
    await sleep(3000);
    expect(await invariant.stop()).toBeLessThanOrEqual(1);
    expect([...invariant.gone].sort()).toEqual([...pods].sort());
    // The dead leader evicted the first pod, the new one the other two, and settled the first
    // one's record from what the pod showed: every eviction is in the history, once.
    expect(await standby.metric('arc_operator_remediations_total', { result: 'evicted' })).toBe(2);
    const history = (await arcd('kill')).status?.remediations ?? [];
    expect(history.filter((r) => r.result === 'Evicting'), 'records left unsettled').toEqual([]);
    await expectEvictedOnce('kill', pods);
    process.stderr.write(`[faults] standby took over ${takeoverMs} ms after SIGKILL of the leader (lease ${LEASE_SECONDS} s)\n`);
  });
});
