// High availability against the real control plane: two operator instances elect one leader on
// a Lease and only it acts; when the leader dies without a word the other takes over within the
// lease time; when the API server itself restarts, the operator recovers its watches and keeps
// working without being restarted.
//
// Note: the last test restarts the kube-apiserver of the cluster under test (a few seconds of
// outage) through hack/cluster/up.sh; cluster-tier files run one at a time, so no other test file
// is affected.
import { AppsV1Api, CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, useTestNamespace } from '../cluster/namespace.ts';
import { counter, installCrd, kubectl, restartApiServer, startOperator } from './cluster-helpers.ts';
import type { RunningOperator } from './cluster-helpers.ts';

const ns = useTestNamespace('arcd-ha');
const LEASE_SECONDS = 6;
const running: RunningOperator[] = [];

function arcdYaml(name: string, replicas = 1): string {
  return JSON.stringify({
    apiVersion: 'arcops.dev/v1alpha1',
    kind: 'ArcDeployment',
    metadata: { name },
    spec: { replicas, image: 'ghcr.io/arcops/arc-service:0.1.0', sidecarImage: 'ghcr.io/arcops/arc-sidecar:0.1.0', apiTokenSecretRef: { name: 'arc-tokens' } },
  });
}

async function leaseHolder(): Promise<string | undefined> {
  const lease = await ns.kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'arc-operator-leader', namespace: ns.name });
  return lease.spec?.holderIdentity ?? undefined;
}

function deploymentReplicas(name: string): Promise<number | undefined> {
  return ns.kc
    .makeApiClient(AppsV1Api)
    .readNamespacedDeployment({ name, namespace: ns.name })
    .then((d) => d.spec?.replicas);
}

beforeAll(async () => {
  await installCrd();
  await ns.kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: 'arc-tokens' }, stringData: { tokens: 'ha-test-token-123' } } });
});

afterAll(async () => {
  await Promise.all(running.map((r) => r.stop()));
});

describe('two operator instances', () => {
  let leader: RunningOperator;
  let standby: RunningOperator;

  it('elect exactly one leader, and only the leader acts', async () => {
    const a = startOperator(ns.kc, ns.name, 'op-a', { LEASE_DURATION_SECONDS: String(LEASE_SECONDS) });
    const b = startOperator(ns.kc, ns.name, 'op-b', { LEASE_DURATION_SECONDS: String(LEASE_SECONDS) });
    running.push(a, b);
    await eventually('one instance to lead', () => [a, b].filter((r) => r.operator.isActing).length === 1 && a.operator.isReady && b.operator.isReady);
    leader = a.operator.isActing ? a : b;
    standby = leader === a ? b : a;
    expect(await leaseHolder()).toBe(leader.identity);

    await kubectl(['-n', ns.name, 'apply', '-f', '-'], arcdYaml('ha-one'));
    await eventually('the Deployment', () => deploymentReplicas('ha-one'));
    // For a while, poll often: never two acting, never the standby reconciling.
    for (let i = 0; i < 12; i++) {
      expect([a, b].filter((r) => r.operator.isActing)).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(leader.reconciles.get(`${ns.name}/ha-one`) ?? 0).toBeGreaterThan(0);
    expect(standby.reconciles.size).toBe(0);
    expect((await leader.metrics.leader.get()).values[0]?.value).toBe(1);
    expect((await standby.metrics.leader.get()).values[0]?.value).toBe(0);
  });

  it('hand over to the standby within the lease time when the leader dies without releasing', async () => {
    expect(standby.operator.isActing).toBe(false);
    const died = Date.now();
    await leader.stop({ release: false }); // a crash: the Lease still names it
    expect(await leaseHolder()).toBe(leader.identity);
    await eventually('the standby to take over', () => standby.operator.isActing, { timeoutMs: 30_000, intervalMs: 100 });
    const tookMs = Date.now() - died;
    // The Lease runs out LEASE_SECONDS after the last renewal; the standby looks every ~1 s.
    expect(tookMs).toBeLessThanOrEqual((LEASE_SECONDS + 3) * 1000);
    expect(await leaseHolder()).toBe(standby.identity);

    // The new leader acts: a change is reconciled.
    await kubectl(['-n', ns.name, 'patch', 'arcd', 'ha-one', '--type=merge', '-p', '{"spec":{"replicas":2}}']);
    await eventually('the new leader to scale the Deployment', async () => (await deploymentReplicas('ha-one')) === 2);
    expect(standby.reconciles.get(`${ns.name}/ha-one`) ?? 0).toBeGreaterThan(0);
  });

  it('keeps working across an API server restart, with its watches recovered and no restart of its own', async () => {
    const op = standby;
    const restartsBefore = await counter(op.metrics, 'watchRestartsTotal');
    const { downMs } = await restartApiServer();
    expect(downMs).toBeGreaterThan(0);
    // Same process, same Operator object: it has to find its way back by itself.
    await eventually('the operator to act again', () => op.operator.isActing && op.operator.isReady, { timeoutMs: 90_000 });
    expect(await counter(op.metrics, 'watchRestartsTotal')).toBeGreaterThan(restartsBefore);

    // The ArcDeployment watch works: a new one is picked up.
    await kubectl(['-n', ns.name, 'apply', '-f', '-'], arcdYaml('after-restart', 1));
    await eventually('a Deployment for the new ArcDeployment', () => deploymentReplicas('after-restart'), { timeoutMs: 90_000 });
    // The owned-object watches work: a hand edit is noticed and put back without a resync.
    await kubectl(['-n', ns.name, 'scale', 'deployment', 'after-restart', '--replicas=4']);
    await eventually('the Deployment replicas to be restored', async () => (await deploymentReplicas('after-restart')) === 1, { timeoutMs: 30_000 });
  });
});
