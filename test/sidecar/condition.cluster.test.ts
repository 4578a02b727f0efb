// The pod condition arcops.dev/PoolHealthy written to a real kube-apiserver (the local control
// plane of hack/cluster; kwok plays the kubelet). The sidecar runs with a ServiceAccount token
// whose Role grants only get/patch on pods and pods/status, as the chart gives it. Pods here run
// no process and their IPs are fake: nothing dials them; the service probed is a real one on
// 127.0.0.1 in this process.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Server, type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POOL_HEALTHY_CONDITION } from '@arcops/common';
import { ApiException, CoreV1Api, KubeConfig, RbacAuthorizationV1Api, type V1Pod, type V1PodCondition } from '@kubernetes/client-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Verdict } from '../../sidecar/src/checks.ts';
import { systemClock } from '@arcops/common';
import { ConditionWriter } from '../../sidecar/src/condition.ts';
import { FIELD_MANAGER, kubePodConditionApi } from '../../sidecar/src/kube.ts';
import { eventually, useTestNamespace } from '../cluster/namespace.ts';
import { createSidecarServiceAccount } from './service-account.ts';
import { type RunningService, startService } from '../support/service.ts';
import { closeServiceForcefully, FAST, type RunningSidecar, startSidecar, waitForReason } from '../support/sidecar.ts';

const ns = useTestNamespace('sidecar-condition');
const SA = 'arc-sidecar';
const healthy: Verdict = { healthy: true, reason: 'Healthy', message: 'every check passes', since: 0 };
const exhausted: Verdict = { healthy: false, reason: 'PoolExhausted', message: 'all connections busy (5 of 5) with 9 callers queued for 15.0s', since: 0 };

let sidecarKc: KubeConfig;
let tmp: string;

/** A KubeConfig for the sidecar's ServiceAccount, optionally through another server URL. */
async function serviceAccountKubeConfig(server?: string): Promise<KubeConfig> {
  const core = ns.kc.makeApiClient(CoreV1Api);
  const token = (await core.createNamespacedServiceAccountToken({ name: SA, namespace: ns.name, body: { spec: { audiences: [], expirationSeconds: 3600 } } })).status?.token;
  if (token === undefined) throw new Error('no token issued');
  const cluster = ns.kc.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ ...cluster, server: server ?? cluster.server }],
    users: [{ name: SA, token }],
    contexts: [{ name: SA, cluster: cluster.name, user: SA, namespace: ns.name }],
    currentContext: SA,
  });
  return kc;
}

async function createPod(name: string): Promise<void> {
  const core = ns.kc.makeApiClient(CoreV1Api);
  await core.createNamespacedPod({
    namespace: ns.name,
    body: {
      metadata: { name, labels: { 'app.kubernetes.io/name': 'arc', 'app.kubernetes.io/managed-by': 'arc-operator' } },
      spec: {
        readinessGates: [{ conditionType: POOL_HEALTHY_CONDITION }],
        containers: [{ name: 'app', image: 'arc.invalid/arc:1' }],
      },
    },
  });
  await eventually(`pod ${name} Running`, async () => (await readPod(name)).status?.phase === 'Running');
}

function readPod(name: string): Promise<V1Pod> {
  return ns.kc.makeApiClient(CoreV1Api).readNamespacedPod({ name, namespace: ns.name });
}

function poolCondition(pod: V1Pod): V1PodCondition | undefined {
  return pod.status?.conditions?.find((c) => c.type === POOL_HEALTHY_CONDITION);
}

function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

async function waitForCondition(name: string, status: 'True' | 'False', reason: string): Promise<V1Pod> {
  return eventually(`${name}: ${POOL_HEALTHY_CONDITION}=${status} (${reason})`, async () => {
    const pod = await readPod(name);
    const c = poolCondition(pod);
    return c?.status === status && c.reason === reason ? pod : undefined;
  });
}

async function apiCode(call: Promise<unknown>): Promise<number> {
  try {
    await call;
  } catch (err) {
    if (err instanceof ApiException) return err.code;
    throw err;
  }
  return 200;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'arc-sidecar-cluster-'));
  await createSidecarServiceAccount(ns.kc, ns.name, SA);
  sidecarKc = await serviceAccountKubeConfig();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('pod condition writer against a real kube-apiserver', () => {
  it('writes the condition with a ServiceAccount limited to get on pods and patch on pods/status, and the readiness gate follows', async () => {
    await createPod('pool-0');
    const asSidecar = sidecarKc.makeApiClient(CoreV1Api);
    // The ServiceAccount really is limited (the authorizer's cache may need a moment to see the Role).
    await eventually('the Role to take effect', async () => (await apiCode(asSidecar.readNamespacedPod({ name: 'pool-0', namespace: ns.name }))) === 200);
    expect(await apiCode(asSidecar.listNamespacedPod({ namespace: ns.name }))).toBe(403);
    expect(await apiCode(asSidecar.deleteNamespacedPod({ name: 'pool-0', namespace: ns.name }))).toBe(403);
    expect(await apiCode(asSidecar.patchNamespacedPod({ name: 'pool-0', namespace: ns.name, body: { metadata: { labels: { x: 'y' } } } }))).toBe(403);
    expect(await apiCode(asSidecar.readNamespacedPod({ name: 'pool-0', namespace: 'default' }))).toBe(403);
    const kubeletConditions = (await readPod('pool-0')).status?.conditions?.map((c) => c.type).sort() ?? [];
    expect(kubeletConditions).toContain('Ready');
    expect(isReady(await readPod('pool-0'))).toBe(false);

    const writer = new ConditionWriter({
      api: kubePodConditionApi(sidecarKc, ns.name, 'pool-0'),
      clock: systemClock,
      logger: pino({ level: 'silent' }),
      refreshMs: 300_000,
    });
    try {
      writer.update(healthy);
      await writer.idle();
      expect(writer.snapshot()).toMatchObject({ writes: 1, failures: 0, lastError: null });
      const pod = await waitForCondition('pool-0', 'True', 'Healthy');
      expect(poolCondition(pod)).toMatchObject({ message: 'every check passes' });
      await eventually('Ready=True through the readiness gate', async () => isReady(await readPod('pool-0')));
      // Written by the sidecar's field manager, through the status subresource.
      const managers = (await readPod('pool-0')).metadata?.managedFields?.filter((f) => f.manager === FIELD_MANAGER) ?? [];
      expect(managers.map((f) => f.subresource)).toEqual(['status']);

      // Unchanged verdicts (even with new figures in the message) are not written again.
      const rv = (await readPod('pool-0')).metadata?.resourceVersion;
      for (let i = 0; i < 10; i++) {
        writer.update({ ...healthy, message: `every check passes (${i})` });
        await writer.idle();
        await new Promise((r) => setTimeout(r, 100));
      }
      const after = await readPod('pool-0');
      expect(after.metadata?.resourceVersion).toBe(rv);
      expect(writer.snapshot().writes).toBe(1);

      writer.update(exhausted);
      await writer.idle();
      const sick = await waitForCondition('pool-0', 'False', 'PoolExhausted');
      expect(poolCondition(sick)?.message).toBe(exhausted.message);
      await eventually('Ready=False through the readiness gate', async () => !isReady(await readPod('pool-0')));
      // The pod's other conditions (written by the "kubelet") are left alone by the merge patch.
      expect(sick.status?.conditions?.map((c) => c.type).sort()).toEqual([...kubeletConditions, POOL_HEALTHY_CONDITION].sort());
    } finally {
      writer.close();
    }
  });

  it('does not rewrite the condition when a restarted sidecar finds it already in place', async () => {
    const before = await readPod('pool-0');
    const writer = new ConditionWriter({ api: kubePodConditionApi(sidecarKc, ns.name, 'pool-0'), clock: systemClock, logger: pino({ level: 'silent' }), refreshMs: 300_000 });
    writer.update(exhausted);
    await writer.idle();
    writer.close();
    expect(writer.snapshot().writes).toBe(0);
    expect((await readPod('pool-0')).metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
  });

  it('says what RBAC is missing when the Role does not grant the write', async () => {
    await createPod('pool-1');
    const rbac = ns.kc.makeApiClient(RbacAuthorizationV1Api);
    const core = ns.kc.makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'reader' } } });
    await rbac.createNamespacedRole({ namespace: ns.name, body: { metadata: { name: 'reader' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }] } });
    await rbac.createNamespacedRoleBinding({
      namespace: ns.name,
      body: { metadata: { name: 'reader' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' }, subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: ns.name }] },
    });
    const token = (await core.createNamespacedServiceAccountToken({ name: 'reader', namespace: ns.name, body: { spec: { audiences: [], expirationSeconds: 600 } } })).status!.token!;
    const cluster = ns.kc.getCurrentCluster()!;
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [cluster], users: [{ name: 'reader', token }], contexts: [{ name: 'r', cluster: cluster.name, user: 'reader' }], currentContext: 'r' });
    const writer = new ConditionWriter({ api: kubePodConditionApi(kc, ns.name, 'pool-1'), clock: systemClock, logger: pino({ level: 'silent' }), refreshMs: 300_000 });
    try {
      writer.update(healthy);
      const snap = await eventually('a refused write', () => (writer.snapshot().lastError?.includes('HTTP 403') ? writer.snapshot() : undefined));
      expect(snap.lastError).toMatch(/cannot patch resource "pods\/status".*\(the sidecar needs get on pods and patch on pods\/status in its namespace\)/);
      expect(snap.nextRetryAt).not.toBeNull();
      expect(poolCondition(await readPod('pool-1'))).toBeUndefined();
    } finally {
      writer.close();
    }
  });
});

/** A TCP relay on loopback to the API server that can be cut and restored (an API outage). */
async function relayTo(target: string): Promise<{ url: string; cut(): Promise<void>; restore(): Promise<void>; close(): Promise<void> }> {
  const upstream = new URL(target);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = async (): Promise<void> => {
    server = createServer((client) => {
      const up = connect(Number(upstream.port), upstream.hostname);
      for (const s of [client, up]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(up).pipe(client);
    });
    await new Promise<void>((r) => server!.listen(port, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  };
  const cut = async (): Promise<void> => {
    const s = server;
    server = undefined;
    for (const sock of sockets) sock.destroy();
    if (s) await new Promise((r) => s.close(r));
  };
  await listen();
  return { url: `https://127.0.0.1:${port}`, cut, restore: listen, close: cut };
}

describe('the whole sidecar writing its own pod condition', () => {
  let svc: RunningService;
  let sc: RunningSidecar | undefined;
  beforeAll(async () => {
    svc = await startService({ DUCKDB_POOL_SIZE: '1' });
  });
  afterAll(async () => {
    await sc?.close();
    await closeServiceForcefully(svc.service, () => svc.close());
  });

  it('publishes its verdicts, keeps probing while the API server is unreachable, and catches up when it returns', async () => {
    await createPod('pool-2');
    const relay = await relayTo(ns.kc.getCurrentCluster()!.server);
    try {
      const root = join(tmp, 'app');
      mkdirSync(join(root, 'dist'), { recursive: true });
      sc = await startSidecar(
        { ARC_SERVICE_URL: svc.url, ARC_API_TOKEN: svc.token, ...FAST, SCAN_ROOTS: root, POD_NAME: 'pool-2', POD_NAMESPACE: ns.name },
        { kubeConfig: await serviceAccountKubeConfig(relay.url) },
      );
      await waitForCondition('pool-2', 'True', 'Healthy');
      await eventually('Ready=True', async () => isReady(await readPod('pool-2')));

      writeFileSync(join(root, 'dist/duckdb_pool_simple.js'), '');
      const sick = await waitForCondition('pool-2', 'False', 'ForbiddenModule');
      expect(poolCondition(sick)?.message).toBe(`forbidden file in the service's tree: ${root}/dist/duckdb_pool_simple.js`);
      await eventually('Ready=False', async () => !isReady(await readPod('pool-2')));

      // The API server becomes unreachable; the pool recovers meanwhile.
      await relay.cut();
      rmSync(join(root, 'dist/duckdb_pool_simple.js'));
      await waitForReason(sc, 'Healthy');
      const during = await eventually('the writer to notice the outage', async () => {
        const s = await sc!.status();
        return s.condition !== null && s.condition.failures > 0 ? s : undefined;
      });
      expect(during.condition?.lastError).toMatch(/ECONNREFUSED/);
      expect((await sc.get('/healthz')).status).toBe(200); // probing and serving go on
      expect(poolCondition(await readPod('pool-2'))?.reason).toBe('ForbiddenModule');

      await relay.restore();
      await waitForCondition('pool-2', 'True', 'Healthy');
      await eventually('Ready=True again', async () => isReady(await readPod('pool-2')));
      // The pod can show the write before the sidecar has read the answer to its patch.
      const after = await eventually('the writer to record its write', async () => {
        const s = await sc!.status();
        return s.condition?.lastError === null && s.condition.written?.reason === 'Healthy' ? s : undefined;
      });
      expect(after.condition).toMatchObject({ lastError: null, written: { status: 'True', reason: 'Healthy' } });
    } finally {
      await relay.close();
    }
  });
});
