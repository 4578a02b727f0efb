// The install paths against the real control plane: `helm install` of charts/arc-operator and
// `kubectl apply -k deploy/default`. Each installs the operator (its pods Running on kwok nodes;
// kwok runs no containers), then the operator runs here as a local process with the env of the
// installed Deployment and a token of the installed ServiceAccount: it reconciles a sample from
// deploy/samples, which proves the installed RBAC is enough, and the same token is refused what the
// operator does not need.
//
// The cluster is shared with other test files: the operator is confined to this file's namespaces
// (WATCH_NAMESPACES) so that it never acts on another test's ArcDeployments.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toolPath } from '../../hack/sync-manifests.ts';
import { eventually, kubeconfigPath, loadKubeConfig, useTestNamespace } from '../cluster/namespace.ts';
import { installCrd, kubectl, repoRoot, standInSidecars } from '../operator/cluster-helpers.ts';
import { deploymentEnv, kubectlAs, serviceAccountKubeconfig, startLocalOperator } from './install-support.ts';

const CHART = join(repoRoot, 'charts/arc-operator');

async function helm(args: string[]): Promise<string> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    execFile(toolPath('helm'), ['--kubeconfig', kubeconfigPath(), ...args], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(`helm ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}

interface PodList {
  items: { metadata: { name: string }; spec: { nodeName?: string }; status: { phase?: string } }[];
}

/** The pods of the operator Deployment are Running, on kwok's fake nodes. */
async function expectOperatorPodsRunning(namespace: string, selector: string, replicas: number): Promise<void> {
  const pods = await eventually(`${replicas} operator pods Running in ${namespace}`, async () => {
    const list = JSON.parse(await kubectl(['-n', namespace, 'get', 'pods', '-l', selector, '-o', 'json'])) as PodList;
    const running = list.items.filter((p) => p.status.phase === 'Running');
    return running.length === replicas ? running : undefined;
  }, { timeoutMs: 90_000 });
  const nodes = JSON.parse(await kubectl(['get', 'nodes', '-o', 'json'])) as { items: { metadata: { name: string; annotations?: Record<string, string> } }[] };
  const kwokNodes = new Set(nodes.items.filter((n) => n.metadata.annotations?.['kwok.x-k8s.io/node'] === 'fake').map((n) => n.metadata.name));
  for (const pod of pods) expect(kwokNodes.has(pod.spec.nodeName ?? ''), `${pod.metadata.name} on ${pod.spec.nodeName}`).toBe(true);
}

interface ArcdStatus {
  metadata: { generation: number };
  status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] };
}

/**
 * Runs the operator locally as `serviceAccount` with the env of `deployment`, applies the basic
 * sample to `appNs` and waits for the owned objects and the status; then checks the refusals.
 */
async function proveOperatorRuns(opts: { opNs: string; deployment: string; serviceAccount: string; appNs: string; overrides?: Record<string, string> }): Promise<{ conditions: string[]; exitCode: number | null; output: string }> {
  const env = await deploymentEnv(opts.opNs, opts.deployment);
  const sa = await serviceAccountKubeconfig(opts.opNs, opts.serviceAccount);
  await kubectl(['-n', opts.appNs, 'apply', '-f', join(repoRoot, 'deploy/samples/arc-tokens-secret.yaml'), '-f', join(repoRoot, 'deploy/samples/arcdeployment-basic.yaml')]);
  const op = startLocalOperator(env, { name: `${opts.deployment}-local-${randomBytes(3).toString('hex')}`, namespace: opts.opNs }, sa.path, opts.overrides);
  let conditions: string[];
  try {
    for (const kind of ['deployment', 'service', 'serviceaccount', 'rolebinding', 'poddisruptionbudget']) {
      const owner = await eventually(`${kind} arc-basic in ${opts.appNs}`, async () => {
        const name = kind === 'rolebinding' ? 'arc-basic-sidecar' : 'arc-basic';
        const obj = JSON.parse(await kubectl(['-n', opts.appNs, 'get', kind, name, '-o', 'json'])) as { metadata: { ownerReferences?: { kind: string; name: string }[] } };
        return obj.metadata.ownerReferences?.[0];
      }, { timeoutMs: 60_000 });
      expect(owner).toMatchObject({ kind: 'ArcDeployment', name: 'arc-basic' });
    }
    // The sidecars are bound to the release's own sidecar ClusterRole, which the chart installed.
    const sidecarRole = env.find((e) => e.name === 'SIDECAR_CLUSTER_ROLE')?.value;
    expect(sidecarRole).toBeDefined();
    const binding = JSON.parse(await kubectl(['-n', opts.appNs, 'get', 'rolebinding', 'arc-basic-sidecar', '-o', 'json'])) as { roleRef: { kind: string; name: string } };
    expect(binding.roleRef).toMatchObject({ kind: 'ClusterRole', name: sidecarRole });
    expect(await kubectl(['get', 'clusterrole', sidecarRole ?? '', '-o', 'name'])).toContain(sidecarRole);
    const arcd = await eventually('the ArcDeployment status', async () => {
      const a = JSON.parse(await kubectl(['-n', opts.appNs, 'get', 'arcd', 'arc-basic', '-o', 'json'])) as ArcdStatus;
      return a.status?.observedGeneration === a.metadata.generation ? a : undefined;
    }, { timeoutMs: 60_000 });
    conditions = arcd.status?.conditions?.map((c) => c.type) ?? [];
    const events = await kubectl(['-n', opts.appNs, 'get', 'events', '--field-selector', 'involvedObject.kind=ArcDeployment,reason=Created', '-o', 'name']);
    expect(events.trim()).not.toBe('');
    const lease = JSON.parse(await kubectl(['-n', env.find((e) => e.name === 'LEASE_NAMESPACE')?.value ?? opts.opNs, 'get', 'lease', 'arc-operator-leader', '-o', 'json'])) as { spec: { holderIdentity?: string } };
    expect(lease.spec.holderIdentity).toMatch(new RegExp(`^${opts.deployment}-local-`));
    await proveRemediation(opts.appNs);
    expect(op.output()).not.toMatch(/forbidden/i);

    // What the operator does not need is refused to its ServiceAccount.
    const pod = (await kubectl(['-n', opts.appNs, 'get', 'pods', '-l', 'app.kubernetes.io/instance=arc-basic', '-o', 'name'])).trim().split('\n')[0] ?? 'pod/none';
    await expect(kubectlAs(sa.path, ['-n', opts.appNs, 'delete', pod, '--wait=false'])).rejects.toThrow(/forbidden/i);
    await expect(kubectlAs(sa.path, ['-n', opts.appNs, 'delete', 'deployment', 'arc-basic', '--wait=false'])).rejects.toThrow(/forbidden/i);
    await expect(kubectlAs(sa.path, ['get', 'secrets', '--all-namespaces'])).rejects.toThrow(/forbidden/i);
    await expect(kubectlAs(sa.path, ['-n', opts.appNs, 'get', 'secrets'])).rejects.toThrow(/forbidden/i);
    await expect(kubectlAs(sa.path, ['-n', opts.appNs, 'get', 'configmaps'])).rejects.toThrow(/forbidden/i);
    await expect(kubectlAs(sa.path, ['get', 'nodes'])).rejects.toThrow(/forbidden/i);
    // ...while what it needs is allowed (the reads it makes itself).
    expect(await kubectlAs(sa.path, ['-n', opts.appNs, 'get', 'secret', 'arc-tokens', '-o', 'name'])).toContain('secret/arc-tokens');
  } catch (err) {
    await op.stop();
    throw err;
  } finally {
    sa.cleanup();
  }
  const exitCode = await op.stop();
  return { conditions, exitCode, output: op.output().slice(-4000) };
}

/**
 * One pod reports an exhausted pool (a stand-in writes the condition the sidecar would: kwok runs
 * no containers): the operator evicts it through the Eviction API and records it in status.
 */
async function proveRemediation(appNs: string): Promise<void> {
  await kubectl(['-n', appNs, 'patch', 'arcd', 'arc-basic', '--type=merge', '-p', '{"spec":{"remediation":{"unhealthySeconds":5}}}']);
  const pods = await eventually('2 Running pods of arc-basic', async () => {
    const list = JSON.parse(await kubectl(['-n', appNs, 'get', 'pods', '-l', 'app.kubernetes.io/instance=arc-basic', '-o', 'json'])) as PodList;
    const running = list.items.filter((p) => p.status.phase === 'Running');
    return running.length === 2 ? running : undefined;
  }, { timeoutMs: 60_000 });
  const victim = pods[0]?.metadata.name ?? '';
  const sidecars = standInSidecars(loadKubeConfig(), appNs, 'arc-basic', (pod) =>
    pod.metadata?.name === victim ? { status: 'False', reason: 'PoolExhausted' } : { status: 'True', reason: 'Healthy' },
  );
  try {
    const record = await eventually(`the eviction of ${victim} in status.remediations`, async () => {
      const a = JSON.parse(await kubectl(['-n', appNs, 'get', 'arcd', 'arc-basic', '-o', 'json'])) as { status?: { remediations?: { pod?: string; action?: string; reason?: string; result?: string }[] } };
      return a.status?.remediations?.find((r) => r.pod === victim);
    }, { timeoutMs: 90_000 });
    expect(record).toMatchObject({ action: 'Evict', reason: 'PoolExhausted' });
    expect(record.result ?? '').not.toMatch(/fail|forbidden|error/i);
    await eventually(`${victim} to be gone`, async () => {
      const left = await kubectl(['-n', appNs, 'get', 'pods', '--field-selector', `metadata.name=${victim}`, '-o', 'json']);
      const items = (JSON.parse(left) as { items: { metadata: { deletionTimestamp?: string } }[] }).items;
      return items.length === 0 || items[0]?.metadata.deletionTimestamp !== undefined;
    }, { timeoutMs: 30_000 });
  } finally {
    await sidecars.stop();
  }
}

/**
 * Makes the API server's Pod Security admission enforce the "restricted" level in these
 * namespaces: a pod template of the chart or of the operator that breaks it gets no pods (the
 * ReplicaSet's creations are refused), so the tests below that wait for Running pods fail.
 */
async function enforceRestricted(...namespaces: string[]): Promise<void> {
  for (const ns of namespaces) {
    await kubectl(['label', 'namespace', ns, '--overwrite', 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/enforce-version=latest']);
    // The admission is on: a pod that breaks "restricted" is refused (so this check can fail).
    const refused = await kubectl(['-n', ns, 'run', 'psa-probe', '--image=probe:1', '--restart=Never', '--dry-run=server', '-o', 'name']).then(
      () => '',
      (err: unknown) => String(err),
    );
    expect(refused).toMatch(/violates PodSecurity "restricted:latest"/);
  }
}

describe('helm install charts/arc-operator (cluster-wide RBAC)', () => {
  const opNs = useTestNamespace('arc-helm-op');
  const appNs = useTestNamespace('arc-helm-app');
  const release = `arc-${randomBytes(3).toString('hex')}`;
  const fullname = `${release}-arc-operator`;

  beforeAll(async () => {
    // Every pod template, the chart's and the operator's, must pass Pod Security "restricted".
    await enforceRestricted(opNs.name, appNs.name);
    // --take-ownership: the CRD may already be installed by another test file or release.
    await helm(['install', release, CHART, '-n', opNs.name, '--take-ownership', '--wait', '--timeout', '120s']);
  });
  afterAll(async () => {
    await helm(['uninstall', release, '-n', opNs.name, '--wait', '--timeout', '60s']).catch(() => undefined);
  });

  it('installs; the operator pods are Running on kwok nodes and the release is deployed', async () => {
    await expectOperatorPodsRunning(opNs.name, `app.kubernetes.io/instance=${release},app.kubernetes.io/component=operator`, 2);
    const status = JSON.parse(await helm(['status', release, '-n', opNs.name, '-o', 'json'])) as { info: { status: string; notes: string } };
    expect(status.info.status).toBe('deployed');
    expect(status.info.notes).toContain(`rollout status deployment/${fullname}`);
    await kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd/arcdeployments.arcops.dev']);
  });

  it("reconciles a sample as the chart's ServiceAccount, which is refused what it does not need", async () => {
    // Cluster-wide RBAC, but the operator is kept to this file's namespace (see the header).
    const run = await proveOperatorRuns({ opNs: opNs.name, deployment: fullname, serviceAccount: fullname, appNs: appNs.name, overrides: { WATCH_NAMESPACES: appNs.name } });
    expect(run.conditions).toEqual(expect.arrayContaining(['Available', 'Progressing', 'Degraded']));
    expect(run.exitCode, run.output).toBe(0);
  });

  it('keeps the CRD (and so every ArcDeployment) when the release is uninstalled', async () => {
    await helm(['uninstall', release, '-n', opNs.name, '--wait', '--timeout', '60s']);
    await expect(kubectl(['get', 'clusterrole', `${opNs.name}-${fullname}`])).rejects.toThrow(/not ?found/i);
    await expect(kubectl(['get', 'clusterrole', `${opNs.name}-${fullname}-sidecar`])).rejects.toThrow(/not ?found/i);
    expect(await kubectl(['get', 'crd', 'arcdeployments.arcops.dev', '-o', 'name'])).toContain('arcdeployments.arcops.dev');
    expect(await kubectl(['-n', appNs.name, 'get', 'arcd', 'arc-basic', '-o', 'name'])).toContain('arc-basic');
  });
});

describe('helm install charts/arc-operator with watchNamespaces', () => {
  const opNs = useTestNamespace('arc-helmns-op');
  const appNs = useTestNamespace('arc-helmns-app');
  const otherNs = useTestNamespace('arc-helmns-other');
  const release = `arc-${randomBytes(3).toString('hex')}`;
  const fullname = `${release}-arc-operator`;

  beforeAll(async () => {
    await enforceRestricted(opNs.name, appNs.name);
    await helm(['install', release, CHART, '-n', opNs.name, '--take-ownership', '--set', `watchNamespaces={${appNs.name}}`, '--set', 'replicaCount=1', '--wait', '--timeout', '120s']);
  });
  afterAll(async () => {
    await helm(['uninstall', release, '-n', opNs.name, '--wait', '--timeout', '60s']).catch(() => undefined);
  });

  it('grants the operator nothing cluster-wide and reconciles in the watched namespace with the env of the chart', async () => {
    await expectOperatorPodsRunning(opNs.name, `app.kubernetes.io/instance=${release},app.kubernetes.io/component=operator`, 1);
    await expect(kubectl(['get', 'clusterrole', `${opNs.name}-${fullname}`])).rejects.toThrow(/not ?found/i);
    expect((await deploymentEnv(opNs.name, fullname)).find((e) => e.name === 'WATCH_NAMESPACES')?.value).toBe(appNs.name);
    const run = await proveOperatorRuns({ opNs: opNs.name, deployment: fullname, serviceAccount: fullname, appNs: appNs.name });
    expect(run.conditions).toEqual(expect.arrayContaining(['Available', 'Progressing', 'Degraded']));
    expect(run.exitCode, run.output).toBe(0);
  });

  it('refuses the operator anything in a namespace it does not watch', async () => {
    const sa = await serviceAccountKubeconfig(opNs.name, fullname);
    try {
      await expect(kubectlAs(sa.path, ['-n', otherNs.name, 'get', 'pods'])).rejects.toThrow(/forbidden/i);
      await expect(kubectlAs(sa.path, ['-n', otherNs.name, 'get', 'arcdeployments'])).rejects.toThrow(/forbidden/i);
      await expect(kubectlAs(sa.path, ['get', 'arcdeployments', '--all-namespaces'])).rejects.toThrow(/forbidden/i);
    } finally {
      sa.cleanup();
    }
  });
});

describe('kubectl apply -k deploy/default', () => {
  const appNs = useTestNamespace('arc-kustomize-app');
  const NS = 'arc-operator-system';

  beforeAll(async () => {
    // A namespace left terminating by an earlier run would refuse new objects.
    await kubectl(['wait', '--for=delete', `namespace/${NS}`, '--timeout=90s']).catch(() => undefined);
    // --force-conflicts: another test file may have applied the same CRD under another manager.
    await kubectl(['apply', '--server-side', '--force-conflicts', '-k', join(repoRoot, 'deploy/default')]);
  });
  afterAll(async () => {
    // Everything but the CRD, which other test files share.
    await kubectl(['delete', 'namespace', NS, '--timeout=90s', '--ignore-not-found']);
    await kubectl(['delete', 'clusterrolebinding,clusterrole', `${NS}-arc-operator`, '--ignore-not-found']);
    await kubectl(['delete', 'clusterrole', `${NS}-arc-operator-sidecar`, '--ignore-not-found']);
  });

  it('installs the operator; its pods are Running on kwok nodes', async () => {
    await expectOperatorPodsRunning(NS, 'app.kubernetes.io/name=arc-operator,app.kubernetes.io/component=operator', 2);
  });

  it('reconciles a sample as the installed ServiceAccount, which is refused what it does not need', async () => {
    const run = await proveOperatorRuns({ opNs: NS, deployment: 'arc-operator', serviceAccount: 'arc-operator', appNs: appNs.name, overrides: { WATCH_NAMESPACES: appNs.name } });
    expect(run.conditions).toEqual(expect.arrayContaining(['Available', 'Progressing', 'Degraded']));
    expect(run.exitCode, run.output).toBe(0);
  });
});

describe('the ArcDeployment of the kind e2e (test/e2e/arcdeployment-e2e.yaml)', () => {
  const ns = useTestNamespace('arc-e2e-manifest');
  beforeAll(installCrd);

  it('passes the CRD validation of the API server, so kind.sh cannot fail on its own manifest', async () => {
    const out = await kubectl(['-n', ns.name, 'apply', '--dry-run=server', '-f', join(repoRoot, 'test/e2e/arcdeployment-e2e.yaml')]);
    expect(out).toContain('arcdeployment.arcops.dev/arc-e2e created (server dry run)');
  });
});
