// The operator process as it runs in a pod: no KUBECONFIG, a ServiceAccount token bound to the
// chart's ClusterRole and the cluster CA in a folder, the API server from
// KUBERNETES_SERVICE_HOST/PORT (here the local control plane on 127.0.0.1), and no Kubernetes
// client library loaded. And the same process with a kubeconfig, the way it runs outside a
// cluster. Both must reconcile an ArcDeployment end to end.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, kubeconfigPath, useTestNamespace } from '../cluster/namespace.ts';
import { createArcDeployment, installCrd, kubectl, repoRoot } from './cluster-helpers.ts';
import { freePort } from './fault-helpers.ts';

const ns = useTestNamespace('operator-incluster');
const SA = 'arc-operator';
/** The names of the kustomize base's ClusterRoles (cluster-scoped names carry the namespace). */
const nameIn = (file: string): string => /^ {2}name: (\S+)$/m.exec(readFileSync(join(repoRoot, file), 'utf8'))?.[1] ?? '';
const OPERATOR_ROLE = nameIn('deploy/rbac/cluster_role.yaml');
const SIDECAR_ROLE = nameIn('deploy/rbac/sidecar_cluster_role.yaml');
let saDir: string;
let inClusterEnv: Record<string, string>;

beforeAll(async () => {
  await installCrd();
  await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=arc-tests', '-f', join(repoRoot, 'deploy/rbac/cluster_role.yaml'), '-f', join(repoRoot, 'deploy/rbac/sidecar_cluster_role.yaml')]);
  const core = ns.kc.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: SA } } });
  await ns.kc.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name: ns.name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: OPERATOR_ROLE },
      subjects: [{ kind: 'ServiceAccount', name: SA, namespace: ns.name }],
    },
  });
  const token = (await core.createNamespacedServiceAccountToken({ name: SA, namespace: ns.name, body: { spec: { audiences: [], expirationSeconds: 3600 } } })).status?.token;
  const cluster = ns.kc.getCurrentCluster()!;
  if (token === undefined || cluster.caData === undefined) throw new Error('no ServiceAccount token, or no CA data in the kubeconfig');
  saDir = mkdtempSync(join(tmpdir(), 'arc-operator-sa-'));
  writeFileSync(join(saDir, 'token'), token);
  writeFileSync(join(saDir, 'ca.crt'), Buffer.from(cluster.caData, 'base64'));
  const url = new URL(cluster.server);
  inClusterEnv = { KUBERNETES_SERVICE_HOST: url.hostname, KUBERNETES_SERVICE_PORT: url.port || '443', SERVICE_ACCOUNT_DIR: saDir };
  await core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: 'arc-tokens' }, stringData: { tokens: 'a-token-for-the-test-123' } } });
});

afterAll(async () => {
  await ns.kc.makeApiClient(RbacAuthorizationV1Api).deleteClusterRoleBinding({ name: ns.name }).catch(() => undefined);
  if (saDir !== undefined) rmSync(saDir, { recursive: true, force: true });
});

/** `kubectl auth can-i`: its answer (it exits 1 for "no"). */
async function canI(args: string[]): Promise<boolean> {
  try {
    return (await kubectl(['auth', 'can-i', ...args])).trim() === 'yes';
  } catch (err) {
    const out = (err as { stdout?: string }).stdout?.trim();
    if (out === 'no') return false;
    throw err;
  }
}

/** main.ts as a process, with its own metrics port. */
async function runOperator(env: Record<string, string>): Promise<{ proc: ChildProcess; base: string; stop(): Promise<void> }> {
  const port = await freePort();
  const { KUBECONFIG: _kc, KUBERNETES_SERVICE_HOST: _h, ...parent } = process.env;
  const proc = spawn(process.execPath, ['--conditions=arc-source', 'operator/src/main.ts'], {
    cwd: repoRoot,
    env: { ...parent, ...env, SIDECAR_CLUSTER_ROLE: SIDECAR_ROLE, WATCH_NAMESPACES: ns.name, LEADER_ELECTION: 'off', METRICS_HOST: '127.0.0.1', METRICS_PORT: String(port), LOG_LEVEL: 'warn', POD_NAME: 'incluster-test' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const base = `http://127.0.0.1:${port}`;
  await eventually('the operator /readyz', async () => {
    if (proc.exitCode !== null) throw new Error(`the operator exited with ${proc.exitCode}: ${stderr}`);
    return (await fetch(`${base}/readyz`)).ok;
  }, { timeoutMs: 30_000 });
  return {
    proc,
    base,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

async function expectReconciled(name: string): Promise<void> {
  await createArcDeployment(ns.kc, ns.name, name, { replicas: 1, apiTokenSecretRef: { name: 'arc-tokens' } });
  const deployment = await eventually(`Deployment ${name}`, () => ns.kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ name, namespace: ns.name }), { timeoutMs: 30_000 });
  expect(deployment.metadata?.managedFields?.map((m) => m.manager)).toContain('arc-operator');
  const status = await eventually(`the status of ${name}`, async () => {
    const a = (await ns.kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ group: 'arcops.dev', version: 'v1alpha1', namespace: ns.name, plural: 'arcdeployments', name })) as {
      status?: { observedGeneration?: number };
    };
    return a.status?.observedGeneration === 1 ? a.status : false;
  }, { timeoutMs: 30_000 });
  expect(status.observedGeneration).toBe(1);
  // With the operator's own (not cluster-admin) rights every object is accepted at the first try:
  // it may bind the sidecar ClusterRole (bind on that one ClusterRole) without holding its rules.
  // And the sidecar's ServiceAccount holds what the sidecar needs, in its own namespace only.
  const sidecar = `system:serviceaccount:${ns.name}:${name}`;
  expect(await canI(['patch', 'pods', '--subresource=status', '-n', ns.name, '--as', sidecar])).toBe(true);
  expect(await canI(['get', 'pods', '-n', ns.name, '--as', sidecar])).toBe(true);
  expect(await canI(['patch', 'pods', '--subresource=status', '-n', 'default', '--as', sidecar])).toBe(false);
  expect(await canI(['patch', 'pods', '-n', ns.name, '--as', sidecar])).toBe(false);
  // Only the operator's Events: the API server may report on the Service of the same name (its
  // ClusterIP repair loop says "ClusterIPNotAllocated ... repairing" now and then).
  const events = await ns.kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: ns.name, fieldSelector: `involvedObject.name=${name}` });
  events.items = events.items.filter((e) => e.source?.component === 'arc-operator');
  expect(events.items.filter((e) => e.type === 'Warning').map((e) => `${e.reason}: ${e.message}`)).toEqual([]);
  expect(events.items.find((e) => e.reason === 'Created')?.message).toMatch(/^created ServiceAccount .*Deployment /);
}

describe('the operator RBAC', () => {
  it('lets the operator bind only the sidecar ClusterRole, and not write pod status itself', async () => {
    const operator = `system:serviceaccount:${ns.name}:${SA}`;
    expect(SIDECAR_ROLE).toMatch(/-sidecar$/);
    expect(await canI(['bind', `clusterrole/${SIDECAR_ROLE}`, '-n', ns.name, '--as', operator])).toBe(true);
    expect(await canI(['bind', 'clusterrole/cluster-admin', '-n', ns.name, '--as', operator])).toBe(false);
    expect(await canI(['escalate', 'roles', '-n', ns.name, '--as', operator])).toBe(false);
    expect(await canI(['patch', 'pods', '--subresource=status', '-n', ns.name, '--as', operator])).toBe(false);
  });
});

describe('the operator process', () => {
  it('reconciles with in-cluster credentials (ServiceAccount token, CA, KUBERNETES_SERVICE_HOST/PORT)', async () => {
    const op = await runOperator(inClusterEnv);
    try {
      await expectReconciled('with-serviceaccount');
    } finally {
      await op.stop();
    }
  });

  it('fails at boot with a clear message when the ServiceAccount folder is missing', async () => {
    const port = await freePort();
    const { KUBECONFIG: _kc, ...parent } = process.env;
    const proc = spawn(process.execPath, ['--conditions=arc-source', 'operator/src/main.ts'], {
      cwd: repoRoot,
      env: { ...parent, ...inClusterEnv, SERVICE_ACCOUNT_DIR: join(saDir, 'absent'), METRICS_HOST: '127.0.0.1', METRICS_PORT: String(port), LEADER_ELECTION: 'off' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
    expect(code).toBe(78);
    expect(stderr).toContain('ca.crt');
  });

  it('reconciles with a kubeconfig', async () => {
    const op = await runOperator({ KUBECONFIG: kubeconfigPath() });
    try {
      await expectReconciled('with-kubeconfig');
    } finally {
      await op.stop();
    }
  });
});
