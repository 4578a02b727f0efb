// The sidecar as it runs in a pod: no KUBECONFIG, the pod's ServiceAccount token and CA in a
// folder, the API server from KUBERNETES_SERVICE_HOST/PORT (here the local control plane on
// 127.0.0.1). The condition is written by plain HTTPS calls, without the Kubernetes client
// library, as a real process started with the image's node flags (among them --use-openssl-ca:
// the API server is trusted through the ServiceAccount's ca.crt alone).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POOL_HEALTHY_CONDITION } from '@arcops/common';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeApiError } from '@arcops/common';
import { inClusterPodConditionApi } from '../../sidecar/src/incluster.ts';
import { imageCommand } from '../../bench/sidecar.ts';
import { eventually, useTestNamespace } from '../cluster/namespace.ts';
import { buildPackage } from '../support/build.ts';
import { createSidecarServiceAccount } from './service-account.ts';
import { type RunningService, startService } from '../support/service.ts';

const ns = useTestNamespace('sidecar-incluster');
const SA = 'arc-sidecar';
const ROOT = new URL('../..', import.meta.url).pathname;
let saDir: string;
let host: string;
let port: number;

async function createPod(name: string): Promise<void> {
  const core = ns.kc.makeApiClient(CoreV1Api);
  await core.createNamespacedPod({
    namespace: ns.name,
    body: { metadata: { name }, spec: { readinessGates: [{ conditionType: POOL_HEALTHY_CONDITION }], containers: [{ name: 'app', image: 'arc.invalid/arc:1' }] } },
  });
}

function readPod(name: string): Promise<V1Pod> {
  return ns.kc.makeApiClient(CoreV1Api).readNamespacedPod({ name, namespace: ns.name });
}

beforeAll(async () => {
  const core = ns.kc.makeApiClient(CoreV1Api);
  await createSidecarServiceAccount(ns.kc, ns.name, SA);
  const token = (await core.createNamespacedServiceAccountToken({ name: SA, namespace: ns.name, body: { spec: { audiences: [], expirationSeconds: 3600 } } })).status?.token;
  const cluster = ns.kc.getCurrentCluster()!;
  const url = new URL(cluster.server);
  host = url.hostname;
  port = Number(url.port || 443);
  // The ServiceAccount volume a pod gets: token and the cluster's CA.
  saDir = mkdtempSync(join(tmpdir(), 'arc-sa-'));
  writeFileSync(join(saDir, 'token'), token ?? '');
  const ca = cluster.caData !== undefined ? Buffer.from(cluster.caData, 'base64') : undefined;
  if (ca === undefined) throw new Error('the local control plane kubeconfig carries no CA data');
  writeFileSync(join(saDir, 'ca.crt'), ca);
  writeFileSync(join(saDir, 'namespace'), ns.name);
});
afterAll(() => rmSync(saDir, { recursive: true, force: true }));

describe('in-cluster condition writer (no client library)', () => {
  it('reads and writes the condition with the pod ServiceAccount, and reports API refusals with their status', async () => {
    await createPod('incluster-0');
    const api = inClusterPodConditionApi({ host, port, serviceAccountDir: saDir }, ns.name, 'incluster-0');
    await eventually('the Role to take effect', async () => {
      try {
        await api.read();
        return true;
      } catch {
        return false;
      }
    });
    expect(await api.read()).toBeUndefined();
    const condition = { type: POOL_HEALTHY_CONDITION, status: 'False' as const, reason: 'PoolExhausted', message: 'all connections busy', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
    await api.patch(condition);
    expect(await api.read()).toMatchObject({ status: 'False', reason: 'PoolExhausted', message: 'all connections busy' });
    const fields = (await readPod('incluster-0')).metadata?.managedFields?.map((f) => f.manager);
    expect(fields).toContain('arc-sidecar');
    // Another pod's status is allowed by the Role too, but a pod that does not exist is a 404,
    // and a namespace it has no Role in is a 403: both surface with their HTTP status.
    const missing = inClusterPodConditionApi({ host, port, serviceAccountDir: saDir }, ns.name, 'no-such-pod');
    await expect(missing.read()).rejects.toMatchObject({ statusCode: 404 });
    const elsewhere = inClusterPodConditionApi({ host, port, serviceAccountDir: saDir }, 'kube-system', 'x');
    const err = await elsewhere.read().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).statusCode).toBe(403);
  });

  it('runs as the sidecar process in a pod would and flips the pod condition', async () => {
    await createPod('incluster-1');
    const svc: RunningService = await startService({ DUCKDB_POOL_SIZE: '1' });
    // The image's command on the compiled sidecar (lite mode has no WebAssembly, so no type
    // stripping); the environment is the container's, not this machine's.
    await buildPackage('sidecar');
    const image = imageCommand();
    expect(image.args).toContain('--use-openssl-ca');
    const child = spawn(process.execPath, image.args, {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        ...image.env,
        ARC_SERVICE_URL: svc.url,
        ARC_API_TOKEN: svc.token,
        SIDECAR_PORT: '0',
        SIDECAR_HOST: '127.0.0.1',
        PROBE_INTERVAL_SECONDS: '0.5',
        SCAN_ROOTS: saDir,
        POD_NAME: 'incluster-1',
        POD_NAMESPACE: ns.name,
        KUBERNETES_SERVICE_HOST: host,
        KUBERNETES_SERVICE_PORT: String(port),
        SERVICE_ACCOUNT_DIR: saDir,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const pod = await eventually('the sidecar to write Healthy', async () => {
        if (child.exitCode !== null) throw new Error(`the sidecar exited with ${child.exitCode}: ${stderr}`);
        const p = await readPod('incluster-1');
        return p.status?.conditions?.find((c) => c.type === POOL_HEALTHY_CONDITION && c.status === 'True' && c.reason === 'Healthy') ? p : undefined;
      });
      expect(pod.status?.conditions?.find((c) => c.type === POOL_HEALTHY_CONDITION)?.status).toBe('True');
      await svc.close();
      await eventually('ServiceUnreachable', async () => {
        const p = await readPod('incluster-1');
        return p.status?.conditions?.some((c) => c.type === POOL_HEALTHY_CONDITION && c.status === 'False' && c.reason === 'ServiceUnreachable') ?? false;
      }, { timeoutMs: 60_000 });
    } finally {
      child.kill('SIGTERM');
      await svc.close();
    }
    expect(stderr).not.toMatch(/Error/);
  });
});
