// Proof that the local control plane (hack/cluster/up.sh) is a real Kubernetes: the API server
// validates CRDs with CEL, RBAC refuses what a ServiceAccount may not do, the controllers run
// Deployments, PodDisruptionBudgets and garbage collection, and kwok's nodes run the pods.
// Pods here never run a process and their IPs are fake: nothing in this file dials them.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  ApiextensionsV1Api,
  AppsV1Api,
  AuthenticationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  PolicyV1Api,
  RbacAuthorizationV1Api,
  VersionApi,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, kubeconfigPath, refusal, useTestNamespace } from './namespace.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');
const pinnedK8s = /^ARC_K8S_VERSION=(\S+)$/m.exec(readFileSync(join(repoRoot, 'hack/cluster/versions.env'), 'utf8'))?.[1];
const run = promisify(execFile);

const ns = useTestNamespace('control-plane');


function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

function deployment(name: string, replicas: number): V1Deployment {
  const labels = { 'app.kubernetes.io/name': name, 'app.kubernetes.io/part-of': 'cluster-proof' };
  return {
    metadata: { name, labels },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          // Never pulled: kwok plays the kubelet and only writes pod status.
          containers: [{ name: 'app', image: 'arc.invalid/pause:1' }],
        },
      },
    },
  };
}

describe('the local control plane', () => {
  it('serves the pinned Kubernetes release, and kubectl matches it', async () => {
    expect(pinnedK8s).toMatch(/^v1\.\d+\.\d+$/);
    const server = await ns.kc.makeApiClient(VersionApi).getCode();
    expect(server.gitVersion).toBe(pinnedK8s);

    const kubectl = join(dirname(kubeconfigPath()), 'bin', 'kubectl');
    const { stdout } = await run(kubectl, ['--kubeconfig', kubeconfigPath(), 'version', '-o', 'json']);
    const versions = JSON.parse(stdout) as { clientVersion: { gitVersion: string }; serverVersion: { gitVersion: string } };
    expect(versions.clientVersion.gitVersion).toBe(pinnedK8s);
    expect(versions.serverVersion.gitVersion).toBe(pinnedK8s);
  });

  it('has kwok Nodes that are Ready', async () => {
    const nodes = await ns.kc.makeApiClient(CoreV1Api).listNode({ labelSelector: 'type=kwok' });
    expect(nodes.items.length).toBeGreaterThanOrEqual(3);
    for (const node of nodes.items) {
      expect(node.metadata?.annotations?.['kwok.x-k8s.io/node']).toBe('fake');
      expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
      // The API server only ever reaches a "kubelet" on loopback.
      expect(node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address).toBe('127.0.0.1');
    }
  });
});

describe('CustomResourceDefinitions with CEL validation', () => {
  // CRDs are cluster-scoped: the group carries the namespace's unique name.
  let group = '';
  let crdName = '';

  beforeAll(async () => {
    group = `${ns.name}.test.arcops.dev`;
    crdName = `widgets.${group}`;
    const ext = ns.kc.makeApiClient(ApiextensionsV1Api);
    await ext.createCustomResourceDefinition({
      body: {
        metadata: { name: crdName },
        spec: {
          group,
          scope: 'Namespaced',
          names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: 'object',
                  properties: {
                    spec: {
                      type: 'object',
                      required: ['minReplicas', 'maxReplicas'],
                      properties: {
                        minReplicas: { type: 'integer', minimum: 0 },
                        maxReplicas: { type: 'integer', minimum: 0 },
                      },
                      x_kubernetes_validations: [
                        { rule: 'self.minReplicas <= self.maxReplicas', message: 'minReplicas must not exceed maxReplicas' },
                      ],
                    },
                  },
                },
              },
            },
          ],
        },
      },
    });
    await eventually('the CRD to be Established', async () => {
      const crd = await ext.readCustomResourceDefinition({ name: crdName });
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    });
  });

  afterAll(async () => {
    if (crdName) await ns.kc.makeApiClient(ApiextensionsV1Api).deleteCustomResourceDefinition({ name: crdName });
  });

  it('accepts a valid object and rejects an invalid one with the rule message', async () => {
    const custom = ns.kc.makeApiClient(CustomObjectsApi);
    const widget = (name: string, minReplicas: number, maxReplicas: number): object => ({
      apiVersion: `${group}/v1`,
      kind: 'Widget',
      metadata: { name },
      spec: { minReplicas, maxReplicas },
    });
    // The new resource's handler can need a moment after Established.
    await eventually('a valid Widget to be created', () =>
      custom.createNamespacedCustomObject({ group, version: 'v1', namespace: ns.name, plural: 'widgets', body: widget('good', 1, 3) }),
    );

    const refused = await refusal(
      custom.createNamespacedCustomObject({ group, version: 'v1', namespace: ns.name, plural: 'widgets', body: widget('bad', 5, 2) }),
    );
    expect(refused.code).toBe(422);
    expect(refused.message).toContain('minReplicas must not exceed maxReplicas');

    // Schema validation too (not only CEL): a negative count is refused.
    const negative = await refusal(
      custom.createNamespacedCustomObject({ group, version: 'v1', namespace: ns.name, plural: 'widgets', body: widget('neg', -1, 2) }),
    );
    expect(negative.code).toBe(422);
    expect(negative.message).toMatch(/minReplicas.*should be greater than or equal to 0/);

    const list = (await custom.listNamespacedCustomObject({ group, version: 'v1', namespace: ns.name, plural: 'widgets' })) as {
      items: { metadata: { name: string } }[];
    };
    expect(list.items.map((w) => w.metadata.name)).toEqual(['good']);
  });
});

describe('workloads on kwok nodes', () => {
  const name = 'web';
  const selector = `app.kubernetes.io/name=${name}`;

  async function pods(): Promise<V1Pod[]> {
    return (await ns.kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: ns.name, labelSelector: selector })).items;
  }

  it('runs a Deployment: its pods are scheduled onto kwok nodes, Running and Ready', async () => {
    const apps = ns.kc.makeApiClient(AppsV1Api);
    await apps.createNamespacedDeployment({ namespace: ns.name, body: deployment(name, 3) });
    await eventually('3 ready replicas', async () => {
      const d = await apps.readNamespacedDeployment({ name, namespace: ns.name });
      return d.status?.readyReplicas === 3 && d.status.availableReplicas === 3;
    });

    const kwokNodes = new Set(
      (await ns.kc.makeApiClient(CoreV1Api).listNode({ labelSelector: 'type=kwok' })).items.map((n) => n.metadata?.name),
    );
    const running = await pods();
    expect(running).toHaveLength(3);
    for (const pod of running) {
      expect(pod.status?.phase).toBe('Running');
      expect(isReady(pod)).toBe(true);
      expect(kwokNodes.has(pod.spec?.nodeName)).toBe(true);
      expect(pod.status?.containerStatuses?.[0]?.state?.running).toBeDefined();
      // The pod was admitted with the namespace's default ServiceAccount.
      expect(pod.spec?.serviceAccountName).toBe('default');
    }
  });

  it('refuses to evict a pod that a PodDisruptionBudget protects (429), and evicts once the budget allows', async () => {
    const policy = ns.kc.makeApiClient(PolicyV1Api);
    const core = ns.kc.makeApiClient(CoreV1Api);
    await policy.createNamespacedPodDisruptionBudget({
      namespace: ns.name,
      body: {
        metadata: { name },
        spec: { minAvailable: 3, selector: { matchLabels: { 'app.kubernetes.io/name': name } } },
      },
    });
    await eventually('the disruption controller to observe the budget', async () => {
      const pdb = await policy.readNamespacedPodDisruptionBudget({ name, namespace: ns.name });
      return pdb.status?.observedGeneration === pdb.metadata?.generation && pdb.status?.currentHealthy === 3;
    });
    const pdb = await policy.readNamespacedPodDisruptionBudget({ name, namespace: ns.name });
    expect(pdb.status?.disruptionsAllowed).toBe(0);

    const victim = (await pods())[0]?.metadata?.name;
    expect(victim).toBeDefined();
    const evict = (podName: string): Promise<unknown> =>
      core.createNamespacedPodEviction({
        name: podName,
        namespace: ns.name,
        body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: podName, namespace: ns.name } },
      });
    const refused = await refusal(evict(victim!));
    expect(refused.code).toBe(429);
    expect(refused.message).toContain('disruption budget');
    // Refused means refused: the pod is still there.
    expect((await pods()).map((p) => p.metadata?.name)).toContain(victim);

    // Positive control: with one disruption allowed the same eviction goes through, the pod goes
    // away and the ReplicaSet replaces it.
    await policy.patchNamespacedPodDisruptionBudget(
      { name, namespace: ns.name, body: { spec: { minAvailable: 2 } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await eventually('the budget to allow one disruption', async () => {
      const p = await policy.readNamespacedPodDisruptionBudget({ name, namespace: ns.name });
      return p.status?.disruptionsAllowed === 1;
    });
    await evict(victim!);
    await eventually('the evicted pod to be replaced', async () => {
      const now = await pods();
      return !now.some((p) => p.metadata?.name === victim) && now.filter(isReady).length === 3;
    });
  });

  it('keeps a pod with a readiness gate NotReady until the gate condition is True (as a kubelet would)', async () => {
    const core = ns.kc.makeApiClient(CoreV1Api);
    const gate = 'arcops.dev/PoolHealthy';
    await core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: 'gated' },
        spec: { readinessGates: [{ conditionType: gate }], containers: [{ name: 'app', image: 'arc.invalid/pause:1' }] },
      },
    });
    const read = (): Promise<V1Pod> => core.readNamespacedPod({ name: 'gated', namespace: ns.name });
    const started = await eventually('the gated pod to be Running', async () => {
      const pod = await read();
      return pod.status?.phase === 'Running' ? pod : undefined;
    });
    expect(isReady(started)).toBe(false);
    expect(started.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('ReadinessGatesNotReady');
    // kwok never writes the gate itself: whoever owns it (the sidecar) does.
    expect(started.status?.conditions?.some((c) => c.type === gate)).toBe(false);

    const setGate = (status: 'True' | 'False'): Promise<V1Pod> =>
      core.patchNamespacedPodStatus(
        {
          name: 'gated',
          namespace: ns.name,
          body: { status: { conditions: [{ type: gate, status, reason: status === 'True' ? 'Healthy' : 'PoolExhausted', lastTransitionTime: new Date() }] } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      );
    await setGate('True');
    await eventually('Ready=True once the gate is True', async () => isReady(await read()));
    await setGate('False');
    await eventually('Ready=False once the gate is False', async () => !isReady(await read()));
    await core.deleteNamespacedPod({ name: 'gated', namespace: ns.name });
  });

  it('garbage-collects dependents when their owner is deleted', async () => {
    const core = ns.kc.makeApiClient(CoreV1Api);
    const apps = ns.kc.makeApiClient(AppsV1Api);

    // A plain owner and dependents, linked only by ownerReferences.
    const owner = await core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: 'owner' } } });
    const ownerReferences = [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid! }];
    await core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: 'dependent', ownerReferences } } });
    await core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: 'dependent', ownerReferences }, stringData: { k: 'v' } } });
    await core.deleteNamespacedConfigMap({ name: 'owner', namespace: ns.name, propagationPolicy: 'Background' });
    await eventually('the dependent ConfigMap and Secret to be collected', async () => {
      const cm = await refusal(core.readNamespacedConfigMap({ name: 'dependent', namespace: ns.name })).catch(() => undefined);
      const secret = await refusal(core.readNamespacedSecret({ name: 'dependent', namespace: ns.name })).catch(() => undefined);
      return cm?.code === 404 && secret?.code === 404;
    });

    // The Deployment from above: deleting it removes its ReplicaSet and, through that, its pods.
    const replicaSets = await apps.listNamespacedReplicaSet({ namespace: ns.name, labelSelector: selector });
    expect(replicaSets.items.length).toBeGreaterThan(0);
    expect(await pods()).not.toHaveLength(0);
    await apps.deleteNamespacedDeployment({ name, namespace: ns.name, propagationPolicy: 'Background' });
    await eventually('the ReplicaSet and pods to be collected', async () => {
      const rs = await apps.listNamespacedReplicaSet({ namespace: ns.name, labelSelector: selector });
      return rs.items.length === 0 && (await pods()).length === 0;
    });
  });
});

describe('RBAC', () => {
  it('refuses a ServiceAccount token what its Role does not grant, and allows what it does', async () => {
    const core = ns.kc.makeApiClient(CoreV1Api);
    const rbac = ns.kc.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'reader' } } });
    await rbac.createNamespacedRole({
      namespace: ns.name,
      body: {
        metadata: { name: 'configmap-reader' },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns.name,
      body: {
        metadata: { name: 'reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'configmap-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: ns.name }],
      },
    });
    await core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: 'visible' }, data: { a: '1' } } });

    const tokenRequest = await core.createNamespacedServiceAccountToken({
      name: 'reader',
      namespace: ns.name,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = tokenRequest.status?.token;
    expect(token).toMatch(/^ey/);

    const cluster = ns.kc.getCurrentCluster()!;
    const asReader = new KubeConfig();
    asReader.loadFromOptions({
      clusters: [cluster],
      users: [{ name: 'reader', token: token! }],
      contexts: [{ name: 'reader', cluster: cluster.name, user: 'reader', namespace: ns.name }],
      currentContext: 'reader',
    });
    const readerCore = asReader.makeApiClient(CoreV1Api);

    const review = await asReader.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    expect(review.status?.userInfo?.username).toBe(`system:serviceaccount:${ns.name}:reader`);

    // Allowed: reading ConfigMaps in its namespace (the authorizer's cache may need a moment).
    const visible = await eventually('the Role to take effect', async () => {
      const list = await readerCore.listNamespacedConfigMap({ namespace: ns.name });
      return list.items.map((c) => c.metadata?.name);
    });
    expect(visible).toContain('visible');

    // Refused: writing ConfigMaps, reading Secrets, deleting pods, and anything in kube-system.
    const writes = await refusal(readerCore.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: 'nope' } } }));
    expect(writes.code).toBe(403);
    expect(writes.message).toContain(`"system:serviceaccount:${ns.name}:reader" cannot create resource "configmaps"`);
    const secrets = await refusal(readerCore.listNamespacedSecret({ namespace: ns.name }));
    expect(secrets.code).toBe(403);
    const deletes = await refusal(readerCore.deleteCollectionNamespacedPod({ namespace: ns.name }));
    expect(deletes.code).toBe(403);
    const otherNamespace = await refusal(readerCore.listNamespacedConfigMap({ namespace: 'kube-system' }));
    expect(otherNamespace.code).toBe(403);

    // A token that is not signed by this cluster is not a user at all (401).
    const forged = new KubeConfig();
    forged.loadFromOptions({
      clusters: [cluster],
      users: [{ name: 'forged', token: `${token!.slice(0, -8)}AAAAAAAA` }],
      contexts: [{ name: 'forged', cluster: cluster.name, user: 'forged' }],
      currentContext: 'forged',
    });
    const unauthenticated = await refusal(forged.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: ns.name }));
    expect(unauthenticated.code).toBe(401);
  });
});
