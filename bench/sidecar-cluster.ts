// The sidecar in pod mode against the local control plane (issue 3): the compiled sidecar with
// the image's command and environment, a real ServiceAccount token bound to the chart's
// ClusterRole arc-operator-sidecar (as the operator binds it), a real pod with the readiness
// gate whose condition it writes over TLS. Its RSS and CPU while probing every 5 s.
// Starts the control plane if it is not up (hack/cluster/up.sh). Prints figures; asserts nothing.
//   node --conditions=arc-source bench/sidecar-cluster.ts [--seconds S]
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { POOL_HEALTHY_CONDITION } from '@arcops/common';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { type ProcessFigures, processLine, sample, sidecarEntry, startSidecar } from './sidecar.ts';
import { BENCH_TOKEN, type Child, clusterDir, ROOT, startService, until } from './support.ts';

const run = promisify(execFile);

export interface SidecarInCluster {
  entry: string;
  figures: ProcessFigures;
  /** Seconds from the sidecar's start to the pod condition True/Healthy in the API server. */
  firstWriteSeconds: number;
  condition: { status?: string; reason?: string };
  /** arc_sidecar_condition_writes_total by outcome at the end. */
  writes: Record<string, number>;
}

export async function benchSidecarInCluster({ seconds = 60 } = {}): Promise<SidecarInCluster> {
  const dir = clusterDir();
  await run('bash', [join(ROOT, 'hack/cluster/up.sh')], { maxBuffer: 16 * 1024 * 1024 });
  const kubeconfig = join(dir, 'kubeconfig');
  await run(join(dir, 'bin', 'kubectl'), ['--kubeconfig', kubeconfig, 'apply', '--server-side', '--force-conflicts', '--field-manager=arc-bench', '-f', join(ROOT, 'deploy/rbac/sidecar_cluster_role.yaml')]);
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `bench-sidecar-${randomBytes(3).toString('hex')}`;
  const tmp = mkdtempSync(join(tmpdir(), 'arc-bench-sidecar-cluster-'));
  const children: Child[] = [];
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  try {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'arc-sidecar' } } });
    await kc.makeApiClient(RbacAuthorizationV1Api).createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'arc-sidecar' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'arc-operator-sidecar' },
        subjects: [{ kind: 'ServiceAccount', name: 'arc-sidecar', namespace }],
      },
    });
    const token = (await core.createNamespacedServiceAccountToken({ name: 'arc-sidecar', namespace, body: { spec: { audiences: [], expirationSeconds: 3600 } } })).status?.token;
    const cluster = kc.getCurrentCluster();
    if (token === undefined || cluster?.caData === undefined) throw new Error('bench sidecar-cluster: no ServiceAccount token or no CA data in the kubeconfig');
    const sa = join(tmp, 'serviceaccount');
    mkdirSync(sa);
    writeFileSync(join(sa, 'token'), token);
    writeFileSync(join(sa, 'ca.crt'), Buffer.from(cluster.caData, 'base64'));
    writeFileSync(join(sa, 'namespace'), namespace);
    const pod = 'arc-0';
    await core.createNamespacedPod({
      namespace,
      body: { metadata: { name: pod }, spec: { readinessGates: [{ conditionType: POOL_HEALTHY_CONDITION }], containers: [{ name: 'arc', image: 'arc.invalid/arc:1' }] } },
    });

    const service = await startService({ DUCKDB_POOL_SIZE: '5' });
    children.push(service);
    const entry = sidecarEntry();
    const server = new URL(cluster.server);
    const t0 = performance.now();
    const sidecar = await startSidecar(entry, {
      ARC_SERVICE_URL: service.url,
      ARC_API_TOKEN: BENCH_TOKEN,
      PROBE_INTERVAL_SECONDS: '5',
      SCAN_ROOTS: 'proc:auto',
      POD_NAME: pod,
      POD_NAMESPACE: namespace,
      KUBERNETES_SERVICE_HOST: server.hostname,
      KUBERNETES_SERVICE_PORT: server.port || '443',
      SERVICE_ACCOUNT_DIR: sa,
    });
    children.push(sidecar);
    const healthy = async (): Promise<{ status?: string; reason?: string } | undefined> =>
      (await core.readNamespacedPod({ name: pod, namespace })).status?.conditions?.find((c) => c.type === POOL_HEALTHY_CONDITION);
    await until('the pod condition True/Healthy', async () => (await healthy())?.status === 'True', 60_000, 100);
    const firstWriteSeconds = (performance.now() - t0) / 1000;
    const figures = await sample(sidecar.proc.pid!, seconds);
    const metrics = await (await fetch(`${sidecar.url}/metrics`)).text();
    const writes: Record<string, number> = {};
    for (const m of metrics.matchAll(/^arc_sidecar_condition_writes_total\{outcome="(\w+)"\} (\d+)$/gm)) writes[m[1]!] = Number(m[2]);
    const c = await healthy();
    return { entry: entry.args.join(' '), figures, firstWriteSeconds, condition: { status: c?.status, reason: c?.reason }, writes };
  } finally {
    await Promise.all(children.map((ch) => ch.stop()));
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  }
}

export function printSidecarInCluster(r: SidecarInCluster): void {
  console.log(`Sidecar in pod mode against the local control plane (probe every 5 s; ${r.entry})`);
  console.log(processLine('pod mode, real API server', r.figures));
  console.log(`  targets: RSS < 60 MB, CPU < 1 % of a core`);
  const writes = Object.entries(r.writes).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  console.log(`  pod condition: ${r.condition.status ?? '-'}/${r.condition.reason ?? '-'}, first written ${r.firstWriteSeconds.toFixed(1)} s after start; writes: ${writes}`);
}

if (import.meta.main) {
  const i = process.argv.indexOf('--seconds');
  printSidecarInCluster(await benchSidecarInCluster({ seconds: i > 0 ? Number(process.argv[i + 1]) : 60 }));
}
