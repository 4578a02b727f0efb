// The operator, in this process, against the real control plane: a sample ArcDeployment becomes
// every owned object with the right content and pods Running on kwok nodes; status and kubectl's
// columns tell the truth; a spec change rolls the pods; hand edits are put back; nothing is
// written when nothing changed; a missing Secret is reported without a hot loop; deleting the
// ArcDeployment lets the garbage collector remove what it owned.
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, PolicyV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import type { V1Container, V1Deployment, V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArcDeployment, Condition } from '../../operator/src/types.ts';
import { eventually, useTestNamespace } from '../cluster/namespace.ts';
import { watchUntil } from '../cluster/watch.ts';
import { counter, createArcDeployment, installCrd, kubectl, repoRoot, standInSidecars, startOperator } from './cluster-helpers.ts';
import type { RunningOperator } from './cluster-helpers.ts';

const ns = useTestNamespace('arcd-operator');
let op: RunningOperator;
let sidecars: { stop(): Promise<void> } | undefined;

const apps = () => ns.kc.makeApiClient(AppsV1Api);
const core = () => ns.kc.makeApiClient(CoreV1Api);

async function arcd(name: string): Promise<ArcDeployment> {
  return (await ns.kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ group: 'arcops.dev', version: 'v1alpha1', namespace: ns.name, plural: 'arcdeployments', name })) as ArcDeployment;
}

function condition(a: ArcDeployment, type: string): Condition | undefined {
  return a.status?.conditions?.find((c) => c.type === type);
}

async function pods(instance: string): Promise<V1Pod[]> {
  const list = await core().listNamespacedPod({ namespace: ns.name, labelSelector: `app.kubernetes.io/name=arc,app.kubernetes.io/instance=${instance}` });
  return list.items.filter((p) => !p.metadata?.deletionTimestamp);
}

function containerOf(d: V1Deployment, name: string): V1Container {
  const c = d.spec?.template.spec?.containers.find((x) => x.name === name);
  if (!c) throw new Error(`no ${name} container`);
  return c;
}

async function rolledOut(name: string, replicas: number): Promise<ArcDeployment | false> {
  const a = await arcd(name);
  const done =
    a.status?.observedGeneration === a.metadata.generation &&
    a.status?.readyReplicas === replicas &&
    a.status?.healthyReplicas === replicas &&
    a.status?.replicas === replicas &&
    condition(a, 'Progressing')?.reason === 'RolloutComplete' &&
    condition(a, 'Available')?.status === 'True';
  return done ? a : false;
}

beforeAll(async () => {
  await installCrd();
  op = startOperator(ns.kc, ns.name, 'op-main');
  await eventually('the operator to lead', () => op.operator.isActing && op.operator.isReady);
});

afterAll(async () => {
  await sidecars?.stop();
  await op?.stop();
});

describe('an ArcDeployment from deploy/samples', () => {
  const name = 'arc-basic';
  /** The resourceVersions of what it owns and of itself: any write changes one. */
  const versions = async (): Promise<string[]> => [
    (await apps().readNamespacedDeployment({ name, namespace: ns.name })).metadata?.resourceVersion ?? '',
    (await core().readNamespacedService({ name, namespace: ns.name })).metadata?.resourceVersion ?? '',
    (await arcd(name)).metadata.resourceVersion ?? '',
  ];

  it('becomes a Deployment, Service, ServiceAccount, RoleBinding and PodDisruptionBudget it controls', async () => {
    await kubectl(['-n', ns.name, 'apply', '-f', join(repoRoot, 'deploy/samples/arc-tokens-secret.yaml'), '-f', join(repoRoot, 'deploy/samples/arcdeployment-basic.yaml')]);
    const owner = await arcd(name);
    const d = await eventually('the Deployment', () => apps().readNamespacedDeployment({ name, namespace: ns.name }));
    const controlledBy = (refs: { uid?: string; controller?: boolean; blockOwnerDeletion?: boolean }[] | undefined): boolean =>
      refs?.some((r) => r.uid === owner.metadata.uid && r.controller === true && r.blockOwnerDeletion === true) ?? false;

    expect(controlledBy(d.metadata?.ownerReferences)).toBe(true);
    expect(d.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('arc-operator');
    const pod = d.spec?.template.spec;
    expect(pod?.shareProcessNamespace).toBe(true);
    expect(pod?.automountServiceAccountToken).toBe(false);
    expect(pod?.readinessGates).toEqual([{ conditionType: 'arcops.dev/PoolHealthy' }]);
    expect(pod?.serviceAccountName).toBe(name);
    const service = containerOf(d, 'arc');
    const sidecar = containerOf(d, 'sidecar');
    expect(service.image).toBe('ghcr.io/arcops/arc-service:0.1.0');
    expect(sidecar.image).toBe('ghcr.io/arcops/arc-sidecar:0.1.0');
    expect(service.env?.find((e) => e.name === 'UV_THREADPOOL_SIZE')?.value).toBe('9');
    expect(service.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(sidecar.volumeMounts?.map((m) => m.mountPath)).toContain('/var/run/secrets/kubernetes.io/serviceaccount');
    expect(service.volumeMounts?.map((m) => m.mountPath)).not.toContain('/var/run/secrets/kubernetes.io/serviceaccount');
    expect(sidecar.env?.find((e) => e.name === 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');

    const svc = await core().readNamespacedService({ name, namespace: ns.name });
    expect(controlledBy(svc.metadata?.ownerReferences)).toBe(true);
    expect(svc.spec?.selector).toEqual({ 'app.kubernetes.io/name': 'arc', 'app.kubernetes.io/instance': name });
    expect(svc.spec?.ports?.[0]).toMatchObject({ name: 'http', port: 8000, targetPort: 'http' });

    const sa = await core().readNamespacedServiceAccount({ name, namespace: ns.name });
    expect(controlledBy(sa.metadata?.ownerReferences)).toBe(true);
    const rbac = ns.kc.makeApiClient(RbacAuthorizationV1Api);
    const binding = await rbac.readNamespacedRoleBinding({ name: `${name}-sidecar`, namespace: ns.name });
    expect(controlledBy(binding.metadata?.ownerReferences)).toBe(true);
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'arc-operator-sidecar' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name, namespace: ns.name }]);
    // No Role of its own any more: the sidecars share the chart's ClusterRole, bound per namespace.
    const roles = await rbac.listNamespacedRole({ namespace: ns.name, labelSelector: `app.kubernetes.io/instance=${name}` });
    expect(roles.items).toEqual([]);
    const pdb = await ns.kc.makeApiClient(PolicyV1Api).readNamespacedPodDisruptionBudget({ name, namespace: ns.name });
    expect(pdb.spec?.maxUnavailable).toBe(1);
    expect(controlledBy(pdb.metadata?.ownerReferences)).toBe(true);
    // Made by a create-only server-side apply: the operator holds its fields as an applier, so a
    // later apply that no longer declares a field removes it.
    for (const obj of [d, svc, sa, binding, pdb]) {
      expect(obj.metadata?.managedFields?.filter((f) => f.manager === 'arc-operator').map((f) => f.operation), `${obj.kind ?? ''} managedFields`).toEqual(['Apply']);
    }
  });

  it('never takes over an object of the same name that it did not make, and makes the rest', async () => {
    const taken = 'taken';
    await core().createNamespacedService({ namespace: ns.name, body: { metadata: { name: taken, labels: { app: 'someone-else' } }, spec: { ports: [{ name: 'web', port: 80 }], selector: { app: 'someone-else' } } } });
    await createArcDeployment(ns.kc, ns.name, taken, { replicas: 1, apiTokenSecretRef: { name: 'arc-tokens' } });
    const degraded = await eventually('Degraded ResourceConflict', async () => {
      const c = condition(await arcd(taken), 'Degraded');
      return c?.reason === 'ResourceConflict' ? c : false;
    });
    expect(degraded.message).toContain(taken);
    await eventually('the Deployment', () => apps().readNamespacedDeployment({ name: taken, namespace: ns.name }));
    const svc = await core().readNamespacedService({ name: taken, namespace: ns.name });
    expect(svc.metadata?.ownerReferences ?? []).toEqual([]);
    expect(svc.metadata?.labels).toEqual({ app: 'someone-else' });
    expect(svc.spec?.ports?.map((p) => [p.name, p.port])).toEqual([['web', 80]]);
    expect(svc.metadata?.managedFields?.some((f) => f.manager === 'arc-operator')).toBe(false);
    await ns.kc.makeApiClient(CustomObjectsApi).deleteNamespacedCustomObject({ group: 'arcops.dev', version: 'v1alpha1', namespace: ns.name, plural: 'arcdeployments', name: taken });
  });

  it('has its pods Running on kwok nodes, held NotReady by the readiness gate until their pool is healthy', async () => {
    const running = await eventually('2 Running pods', async () => {
      const p = await pods(name);
      return p.length === 2 && p.every((x) => x.status?.phase === 'Running') ? p : false;
    });
    const nodes = new Set((await core().listNode({ labelSelector: 'type=kwok' })).items.map((n) => n.metadata?.name));
    for (const p of running) {
      expect(nodes.has(p.spec?.nodeName)).toBe(true);
      expect(p.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');
    }
    const a = await eventually('status to show 0 ready pods', async () => {
      const x = await arcd(name);
      return x.status?.replicas === 2 ? x : false;
    });
    expect(a.status).toMatchObject({ readyReplicas: 0, healthyReplicas: 0, selector: `app.kubernetes.io/instance=${name},app.kubernetes.io/name=arc` });
    expect(condition(a, 'Available')).toMatchObject({ status: 'False', reason: 'MinimumReplicasUnavailable' });
  });

  it('reports Ready, Healthy and Available once the pods report a healthy pool, in status and in kubectl get', async () => {
    sidecars = standInSidecars(ns.kc, ns.name, name);
    const a = await eventually('a finished rollout of 2 healthy pods', () => rolledOut(name, 2));
    expect(condition(a, 'Degraded')).toMatchObject({ status: 'False', reason: 'AsExpected' });
    expect(condition(a, 'Available')?.observedGeneration).toBe(a.metadata.generation);

    const table = await kubectl(['-n', ns.name, 'get', 'arcd', name]);
    const [header, row] = table.trim().split('\n');
    expect(header?.split(/\s+/)).toEqual(['NAME', 'DESIRED', 'READY', 'HEALTHY', 'AVAILABLE', 'LAST-REMEDIATION', 'AGE']);
    expect(row?.split(/\s+/).slice(0, 5)).toEqual([name, '2', '2', '2', 'True']);
    const wide = await kubectl(['-n', ns.name, 'get', 'arcd', name, '-o', 'wide']);
    expect(wide).toContain('ghcr.io/arcops/arc-service:0.1.0');
    expect(wide).toContain('AsExpected');

    const pdb = await eventually('the budget to allow one disruption', async () => {
      const p = await ns.kc.makeApiClient(PolicyV1Api).readNamespacedPodDisruptionBudget({ name, namespace: ns.name });
      return p.status?.disruptionsAllowed === 1 ? p : false;
    });
    expect(pdb.status?.currentHealthy).toBe(2);
  });

  it('writes nothing while nothing changes, however often it reconciles', async () => {
    const writes = async (): Promise<number> =>
      (await counter(op.metrics, 'applyTotal', { result: 'created' })) +
      (await counter(op.metrics, 'applyTotal', { result: 'updated' })) +
      (await counter(op.metrics, 'statusUpdatesTotal'));
    const before = await writes();
    const versionsBefore = await versions();
    const reconciles = op.reconciles.get(`${ns.name}/${name}`) ?? 0;
    for (let i = 0; i < 5; i++) {
      op.operator.queue.add(`${ns.name}/${name}`);
      await eventually('the reconcile to run', () => (op.reconciles.get(`${ns.name}/${name}`) ?? 0) > reconciles + i);
    }
    expect(await writes()).toBe(before);
    expect(await versions()).toEqual(versionsBefore);
    expect(await counter(op.metrics, 'applyTotal', { result: 'unchanged' })).toBeGreaterThan(0);
  });

  it('is passed over once by a new operator process (an upgrade, a failover), which writes nothing', async () => {
    const key = `${ns.name}/${name}`;
    const versionsBefore = await versions();
    await op.stop();
    // Without leader election it acts at once, while its lists are still coming in.
    op = startOperator(ns.kc, ns.name, 'op-next', { LEADER_ELECTION: 'off' });
    await eventually('the new operator to pass over it', () => op.operator.isActing && (op.reconciles.get(key) ?? 0) >= 1);
    // Filling its caches, it saw every pod and owned object added: none of those may make a
    // second pass once COALESCE_SECONDS (1) is over.
    await new Promise((r) => setTimeout(r, 2500));
    expect(op.reconciles.get(key)).toBe(1);
    expect((await counter(op.metrics, 'applyTotal', { result: 'unchanged' })) > 0).toBe(true);
    expect((await counter(op.metrics, 'applyTotal', { result: 'created' })) + (await counter(op.metrics, 'applyTotal', { result: 'updated' })) + (await counter(op.metrics, 'statusUpdatesTotal'))).toBe(0);
    expect(await versions()).toEqual(versionsBefore);
  });

  it('folds a burst of pod changes into one reconcile', async () => {
    const key = `${ns.name}/${name}`;
    const [pod] = await pods(name);
    const before = op.reconciles.get(key) ?? 0;
    // Six changes of one pod, one after the other, as a rollout or a scheduling pass makes them;
    // each is a watch event for this ArcDeployment. They usually take a few tens of milliseconds.
    const started = performance.now();
    for (let i = 0; i < 6; i++) {
      await core().patchNamespacedPod({
        name: pod!.metadata!.name!,
        namespace: ns.name,
        body: [{ op: 'add', path: '/metadata/labels/arcops-test-burst', value: String(i) }],
      });
    }
    const spanMs = performance.now() - started;
    await eventually('the reconcile to run', () => (op.reconciles.get(key) ?? 0) > before);
    await new Promise((r) => setTimeout(r, 2500)); // more than COALESCE_SECONDS (1) after the last change
    // One reconcile per second of changes (one when they took under a second); each change
    // reconciled on its own would make six.
    const reconciles = (op.reconciles.get(key) ?? 0) - before;
    expect(reconciles, `6 changes in ${Math.round(spanMs)} ms`).toBeGreaterThanOrEqual(1);
    expect(reconciles, `6 changes in ${Math.round(spanMs)} ms`).toBeLessThanOrEqual(1 + Math.floor(spanMs / 1000));
  });

  it('rolls the pods when the spec changes, and reports the rollout', async () => {
    const oldPods = new Set((await pods(name)).map((p) => p.metadata?.name));
    await kubectl(['-n', ns.name, 'patch', 'arcd', name, '--type=merge', '-p', JSON.stringify({ spec: { pool: { size: 7 } } })]);
    const progressing = await eventually('the rollout to be reported', async () => {
      const a = await arcd(name);
      return a.metadata.generation === 2 && a.status?.observedGeneration === 2 && condition(a, 'Progressing')?.reason === 'RolloutInProgress' ? a : false;
    });
    expect(condition(progressing, 'Progressing')?.status).toBe('True');
    const done = await eventually('the rollout to finish', () => rolledOut(name, 2), { timeoutMs: 90_000 });
    expect(done.status?.updatedReplicas).toBe(2);
    const d = await apps().readNamespacedDeployment({ name, namespace: ns.name });
    expect(containerOf(d, 'arc').env?.find((e) => e.name === 'UV_THREADPOOL_SIZE')?.value).toBe('11');
    const now = await pods(name);
    expect(now).toHaveLength(2);
    expect(now.some((p) => oldPods.has(p.metadata?.name))).toBe(false);
  });

  it('scales with kubectl scale', async () => {
    await kubectl(['-n', ns.name, 'scale', 'arcd', name, '--replicas=3']);
    const a = await eventually('3 healthy pods', () => rolledOut(name, 3), { timeoutMs: 90_000 });
    expect(a.spec.replicas).toBe(3);
    expect((await apps().readNamespacedDeployment({ name, namespace: ns.name })).spec?.replicas).toBe(3);
  });

  it('puts back what was edited or deleted by hand', async () => {
    await kubectl(['-n', ns.name, 'patch', 'service', name, '--type=json', '-p', JSON.stringify([{ op: 'replace', path: '/spec/ports/0/port', value: 9999 }])]);
    await kubectl(['-n', ns.name, 'delete', 'rolebinding', `${name}-sidecar`]);
    await kubectl(['-n', ns.name, 'label', 'pdb', name, 'app.kubernetes.io/managed-by-']);
    await kubectl(['-n', ns.name, 'set', 'env', `deployment/${name}`, '-c', 'arc', 'DUCKDB_POOL_SIZE=50', 'SNEAKY=1']);
    await eventually('the Service port to be restored', async () => (await core().readNamespacedService({ name, namespace: ns.name })).spec?.ports?.[0]?.port === 8000);
    await eventually('the RoleBinding to be recreated', () => ns.kc.makeApiClient(RbacAuthorizationV1Api).readNamespacedRoleBinding({ name: `${name}-sidecar`, namespace: ns.name }));
    await eventually(
      'the PodDisruptionBudget label to be restored',
      async () => (await ns.kc.makeApiClient(PolicyV1Api).readNamespacedPodDisruptionBudget({ name, namespace: ns.name })).metadata?.labels?.['app.kubernetes.io/managed-by'] === 'arc-operator',
    );
    await eventually('the Deployment env to be restored', async () => {
      const env = containerOf(await apps().readNamespacedDeployment({ name, namespace: ns.name }), 'arc').env ?? [];
      return env.find((e) => e.name === 'DUCKDB_POOL_SIZE')?.value === '7' && !env.some((e) => e.name === 'SNEAKY');
    });
    // The Event is recorded after the object is put back, so it may arrive a moment later.
    const restored = 'restored Service arc-basic: spec.ports.0.port differed from the declared state';
    const messages = await eventually('the DriftCorrected Event', async () => {
      const events = await core().listNamespacedEvent({ namespace: ns.name, fieldSelector: `involvedObject.name=${name},reason=DriftCorrected` });
      const m = events.items.map((e) => e.message);
      return m.includes(restored) ? m : undefined;
    });
    expect(messages).toContain(restored);
  });

  it('moves a sidecar grant from before (a Role of its own) to the shared ClusterRole, and deletes that Role', async () => {
    // What an operator before the shared ClusterRole made: a Role per ArcDeployment and a
    // RoleBinding to it. A roleRef cannot change, so the binding has to be made again.
    const rbac = ns.kc.makeApiClient(RbacAuthorizationV1Api);
    const owner = await arcd(name);
    const ownerReferences = [{ apiVersion: 'arcops.dev/v1alpha1', kind: 'ArcDeployment', name, uid: owner.metadata.uid!, controller: true, blockOwnerDeletion: true }];
    const labels = { 'app.kubernetes.io/name': 'arc', 'app.kubernetes.io/instance': name, 'app.kubernetes.io/managed-by': 'arc-operator' };
    const legacy = `${name}-sidecar`;
    await rbac.createNamespacedRole({
      namespace: ns.name,
      body: {
        metadata: { name: legacy, labels, ownerReferences },
        rules: [
          { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
          { apiGroups: [''], resources: ['pods/status'], verbs: ['patch'] },
        ],
      },
    });
    const oldBinding = { metadata: { name: legacy, labels, ownerReferences }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: legacy }, subjects: [{ kind: 'ServiceAccount', name, namespace: ns.name }] };
    // The operator puts a deleted binding back within about a second: swap it at once, again if it won.
    await eventually('the binding from before to be in place', async () => {
      await rbac.deleteNamespacedRoleBinding({ name: legacy, namespace: ns.name }).catch(() => undefined);
      await rbac.createNamespacedRoleBinding({ namespace: ns.name, body: oldBinding }).catch(() => undefined);
      return (await rbac.readNamespacedRoleBinding({ name: legacy, namespace: ns.name })).roleRef.kind === 'Role';
    });
    // A change of the ArcDeployment makes the operator look at it again (it does not watch Roles).
    await kubectl(['-n', ns.name, 'annotate', 'arcd', name, `test.arcops.dev/poke=${Date.now()}`, '--overwrite']);
    const moved = await eventually('the RoleBinding to refer to the ClusterRole', async () => {
      const b = await rbac.readNamespacedRoleBinding({ name: legacy, namespace: ns.name }).catch(() => undefined);
      return b?.roleRef.kind === 'ClusterRole' ? b : false;
    });
    expect(moved.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'arc-operator-sidecar' });
    expect(moved.subjects).toEqual([{ kind: 'ServiceAccount', name, namespace: ns.name }]);
    await eventually('the Role from before to be deleted', async () => (await rbac.listNamespacedRole({ namespace: ns.name })).items.every((r) => r.metadata?.name !== legacy));
  });

  it('removes what it owned when the ArcDeployment is deleted (garbage collection)', async () => {
    await sidecars?.stop();
    sidecars = undefined;
    await kubectl(['-n', ns.name, 'delete', 'arcd', name, '--wait=true']);
    const owned = async (): Promise<Record<string, number>> => {
      const left = await Promise.all([
        apps().listNamespacedDeployment({ namespace: ns.name, labelSelector: `app.kubernetes.io/instance=${name}` }),
        core().listNamespacedService({ namespace: ns.name, labelSelector: `app.kubernetes.io/instance=${name}` }),
        core().listNamespacedServiceAccount({ namespace: ns.name, labelSelector: `app.kubernetes.io/instance=${name}` }),
        ns.kc.makeApiClient(RbacAuthorizationV1Api).listNamespacedRole({ namespace: ns.name, labelSelector: `app.kubernetes.io/instance=${name}` }),
        ns.kc.makeApiClient(RbacAuthorizationV1Api).listNamespacedRoleBinding({ namespace: ns.name, labelSelector: `app.kubernetes.io/instance=${name}` }),
        ns.kc.makeApiClient(PolicyV1Api).listNamespacedPodDisruptionBudget({ namespace: ns.name, labelSelector: `app.kubernetes.io/instance=${name}` }),
        core().listNamespacedPod({ namespace: ns.name, labelSelector: `app.kubernetes.io/instance=${name}` }),
      ]);
      return Object.fromEntries(['Deployment', 'Service', 'ServiceAccount', 'Role', 'RoleBinding', 'PodDisruptionBudget', 'Pod'].map((kind, i) => [kind, left[i]?.items.length ?? -1]));
    };
    const none = { Deployment: 0, Service: 0, ServiceAccount: 0, Role: 0, RoleBinding: 0, PodDisruptionBudget: 0, Pod: 0 };
    await eventually('every owned object to be gone', async () => Object.values(await owned()).every((n) => n === 0), { timeoutMs: 90_000 });
    expect(await owned()).toEqual(none);
  });
});

describe('an ArcDeployment whose token Secret is missing', () => {
  const name = 'no-secret';

  it('is accepted, reported Degraded with the reason, retried with backoff (no hot loop), and recovers when the Secret appears', async () => {
    await kubectl(
      ['-n', ns.name, 'apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'arcops.dev/v1alpha1',
        kind: 'ArcDeployment',
        metadata: { name },
        spec: { replicas: 1, image: 'ghcr.io/arcops/arc-service:0.1.0', sidecarImage: 'ghcr.io/arcops/arc-sidecar:0.1.0', apiTokenSecretRef: { name: 'missing-tokens' } },
      }),
    );
    const key = `${ns.name}/${name}`;
    const degraded = await eventually('Degraded SecretNotFound', async () => {
      const a = await arcd(name);
      return condition(a, 'Degraded')?.reason === 'SecretNotFound' ? a : false;
    });
    expect(condition(degraded, 'Degraded')).toMatchObject({ status: 'True' });
    expect(condition(degraded, 'Degraded')?.message).toContain('Secret missing-tokens (spec.apiTokenSecretRef) was not found');
    expect(condition(degraded, 'Progressing')).toMatchObject({ status: 'False', reason: 'SecretNotFound' });
    // The other objects exist; the Deployment waits for the Secret.
    await eventually('the Service', () => core().readNamespacedService({ name, namespace: ns.name }));
    await expect(apps().readNamespacedDeployment({ name, namespace: ns.name })).rejects.toMatchObject({ code: 404 });

    // Backoff 0.5 s doubling to 8 s, never a hot loop. Every pass bumps the count of the one
    // SecretNotFound Event: a watch on it sees three more passes, spread over 3 s at least (the
    // three shortest delays add up to 3.5 s; a hot loop makes them within a second).
    const start = op.reconciles.get(key) ?? 0;
    const counts: { count: number; at: number }[] = [];
    const retried = await watchUntil<{ count?: number; lastTimestamp?: string }>(
      ns.kc,
      `/api/v1/namespaces/${ns.name}/events`,
      { fieldSelector: `involvedObject.name=${name},reason=SecretNotFound` },
      (e) => {
        counts.push({ count: e.object.count ?? 0, at: Date.parse(e.object.lastTimestamp ?? '') });
        return counts.length > 0 && (counts.at(-1)?.count ?? 0) >= (counts[0]?.count ?? 0) + 3;
      },
      Date.now() + 40_000,
    );
    expect(retried.met, `passes seen: ${JSON.stringify(counts)}`).toBe(true);
    expect((counts.at(-1)?.at ?? 0) - (counts[0]?.at ?? 0)).toBeGreaterThanOrEqual(3000);
    const passes = (op.reconciles.get(key) ?? 0) - start;
    expect(passes).toBeGreaterThanOrEqual(3);
    expect(passes).toBeLessThanOrEqual(6);
    const warnings = await core().listNamespacedEvent({ namespace: ns.name, fieldSelector: `involvedObject.name=${name},reason=SecretNotFound` });
    expect(warnings.items).toHaveLength(1); // repeats fold into one Event
    expect(warnings.items[0]?.count ?? 0).toBeGreaterThanOrEqual(2);
    expect(warnings.items[0]?.type).toBe('Warning');

    await core().createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: 'missing-tokens' }, stringData: { tokens: 'a-token-for-the-test-123' } } });
    await eventually('the Deployment once the Secret exists', () => apps().readNamespacedDeployment({ name, namespace: ns.name }), { timeoutMs: 30_000 });
    await eventually('Degraded to clear', async () => condition(await arcd(name), 'Degraded')?.status === 'False');
  });
});
