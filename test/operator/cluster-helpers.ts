// Helpers for the operator's cluster-tier tests: the CRD from crds/, kubectl, an in-process
// operator, and a stand-in for the sidecars (kwok runs no containers, so nothing would ever set
// the pods' arcops.dev/PoolHealthy condition; the stand-in patches it the way the sidecar does).
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import pino from 'pino';
import type { Logger } from 'pino';
import { loadConfig } from '../../operator/src/config.ts';
import { HttpKubeClient } from '../../operator/src/kube.ts';
import { createMetrics } from '../../operator/src/metrics.ts';
import type { OperatorMetrics } from '../../operator/src/metrics.ts';
import { Operator } from '../../operator/src/operator.ts';
import type { ArcDeploymentSpec } from '../../operator/src/types.ts';
import { eventually, kubeconfigPath } from '../cluster/namespace.ts';
export { refusal } from '../cluster/namespace.ts';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

export function clusterDir(): string {
  return dirname(kubeconfigPath());
}

/** Runs the cluster's own kubectl against it; resolves with stdout, rejects with stderr. */
export async function kubectl(args: string[], input?: string): Promise<string> {
  const bin = join(clusterDir(), 'bin', 'kubectl');
  if (input === undefined) {
    const { stdout } = await run(bin, ['--kubeconfig', kubeconfigPath(), ...args], { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['--kubeconfig', kubeconfigPath(), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(err || `kubectl exited with ${code}`))));
    child.stdin.end(input);
  });
}

/** Installs (or updates) the ArcDeployment CRD from crds/ and waits until it is served. */
export async function installCrd(): Promise<void> {
  await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=arc-tests', '-f', join(repoRoot, 'crds/arcops.dev_arcdeployments.yaml')]);
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/arcdeployments.arcops.dev']);
  // The new resource's handler can need a moment after Established.
  await eventually('ArcDeployments to be served', () => kubectl(['get', 'arcdeployments', '-A', '-o', 'name']).then(() => true));
}

/**
 * Creates an ArcDeployment as the cluster tests use it: the given spec over placeholder images
 * (kwok runs no containers) and a fast probe (2 s interval, 1 s timeout).
 */
export async function createArcDeployment(
  kc: KubeConfig,
  namespace: string,
  name: string,
  spec: Partial<ArcDeploymentSpec> & Pick<ArcDeploymentSpec, 'replicas' | 'apiTokenSecretRef'>,
): Promise<void> {
  await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: 'arcops.dev',
    version: 'v1alpha1',
    namespace,
    plural: 'arcdeployments',
    body: {
      apiVersion: 'arcops.dev/v1alpha1',
      kind: 'ArcDeployment',
      metadata: { name },
      spec: {
        image: 'ghcr.io/arcops/arc-service:0.1.0',
        sidecarImage: 'ghcr.io/arcops/arc-sidecar:0.1.0',
        probe: { intervalSeconds: 2, timeoutSeconds: 1 },
        ...spec,
      },
    },
  });
}

export interface RunningOperator {
  identity: string;
  operator: Operator;
  metrics: OperatorMetrics;
  client: HttpKubeClient;
  /** Reconciles run per ArcDeployment key (counted at the controller, which runs only while acting). */
  reconciles: ReadonlyMap<string, number>;
  /** Stops the operator; `release: false` is a crash (the Lease is left to run out). */
  stop(options?: { release?: boolean }): Promise<void>;
}

function testLogger(name: string): Logger {
  const file = process.env['ARC_OPERATOR_TEST_LOG'];
  if (!file) return pino({ level: 'silent' });
  return pino({ level: 'debug', base: { test: name } }, pino.destination({ dest: file, append: true, sync: true }));
}

/** Settings for short leases and backoffs, so that takeovers and retries happen in seconds. */
export const FAST_OPERATOR_ENV = {
  LEASE_DURATION_SECONDS: '6',
  LEASE_RENEW_DEADLINE_SECONDS: '4',
  LEASE_RETRY_PERIOD_SECONDS: '1',
  RESYNC_SECONDS: '60',
  WATCH_TIMEOUT_SECONDS: '30',
  BACKOFF_BASE_SECONDS: '0.5',
  BACKOFF_MAX_SECONDS: '8',
} as const;

/**
 * An operator in this process, scoped to one namespace (its Lease lives there too), with short
 * leases and backoffs so that the tests see takeovers and retries in seconds.
 */
export function startOperator(kc: KubeConfig, namespace: string, identity: string, env: Record<string, string> = {}): RunningOperator {
  const config = loadConfig({
    POD_NAME: identity,
    WATCH_NAMESPACES: namespace,
    LEASE_NAMESPACE: namespace,
    ...FAST_OPERATOR_ENV,
    ...env,
  });
  const client = new HttpKubeClient(kc, { userAgent: `arc-operator-test/${identity}` });
  const metrics = createMetrics(undefined, { defaults: false });
  const operator = new Operator(config, { client, logger: testLogger(identity), metrics });
  const reconciles = new Map<string, number>();
  const reconcile = operator.controller.reconcile.bind(operator.controller);
  operator.controller.reconcile = (key) => {
    reconciles.set(key, (reconciles.get(key) ?? 0) + 1);
    return reconcile(key);
  };
  operator.start();
  let stopped = false;
  return {
    identity,
    operator,
    metrics,
    client,
    reconciles,
    async stop(options = {}) {
      if (stopped) return;
      stopped = true;
      await operator.stop({ release: options.release ?? true });
      client.close();
    },
  };
}

/** Sum of a counter's values whose labels match `labels`. */
export async function counter(metrics: OperatorMetrics, name: keyof OperatorMetrics, labels: Record<string, string> = {}): Promise<number> {
  const metric = metrics[name] as { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> };
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want)).reduce((sum, v) => sum + v.value, 0);
}

/**
 * Test fixture standing in for the sidecars: every pod of the ArcDeployment gets the
 * arcops.dev/PoolHealthy condition the sidecar would write (True, or what `health` says).
 */
export function standInSidecars(
  kc: KubeConfig,
  namespace: string,
  instance: string,
  health: (pod: V1Pod) => { status: 'True' | 'False'; reason: string } = () => ({ status: 'True', reason: 'Healthy' }),
): { stop(): Promise<void> } {
  const core = kc.makeApiClient(CoreV1Api);
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const pods = await core.listNamespacedPod({ namespace, labelSelector: `app.kubernetes.io/name=arc,app.kubernetes.io/instance=${instance}` });
        for (const pod of pods.items) {
          if (pod.metadata?.deletionTimestamp || pod.status?.phase !== 'Running') continue;
          const want = health(pod);
          const have = pod.status.conditions?.find((c) => c.type === 'arcops.dev/PoolHealthy');
          if (have?.status === want.status && have.reason === want.reason) continue;
          await core.patchNamespacedPodStatus(
            {
              name: pod.metadata?.name ?? '',
              namespace,
              body: {
                status: {
                  conditions: [
                    { type: 'arcops.dev/PoolHealthy', status: want.status, reason: want.reason, message: 'set by the test stand-in for the sidecar', lastTransitionTime: new Date() },
                  ],
                },
              },
            },
            setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
          );
        }
      } catch {
        // pods come and go; the API server may be restarting: try again
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

type Component = 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler' | 'kwok';

/**
 * Stops one component of the cluster under test for real: SIGTERM to the pid in its pid file,
 * checked like hack/cluster/down.sh does (/proc/<pid>/cmdline must be this cluster's binary),
 * and, as down.sh does, SIGKILL if it has not exited 10 s later (kube-apiserver's graceful
 * shutdown can hang once it stopped listening). Resolves once the process is gone.
 */
export async function stopComponent(component: Component): Promise<void> {
  const dir = clusterDir();
  const pidFile = join(dir, 'pids', `${component}.pid`);
  if (!existsSync(pidFile)) throw new Error(`no ${pidFile}: the cluster under test was not started by hack/cluster/up.sh`);
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  if (cmdline[0] !== join(dir, 'bin', component)) throw new Error(`pid ${pid} is not this cluster's ${component}`);
  process.kill(pid, 'SIGTERM');
  const gone = (): boolean => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z';
  try {
    await eventually(`${component} to exit`, gone, { timeoutMs: 10_000, intervalMs: 100 });
  } catch {
    process.kill(pid, 'SIGKILL');
    await eventually(`${component} to exit after SIGKILL`, gone, { timeoutMs: 10_000, intervalMs: 100 });
  }
}

/**
 * hack/cluster/up.sh for the cluster under test: starts what is missing and returns once the
 * API server is ready and the Nodes are Ready. The environment is passed through, since up.sh
 * does not remember the ARC_*_PORT values the cluster was started with.
 */
export async function startMissingComponents(): Promise<void> {
  await run('bash', [join(repoRoot, 'hack/cluster/up.sh')], { env: { ...process.env, ARC_CLUSTER_DIR: clusterDir() }, maxBuffer: 16 * 1024 * 1024 });
}

/** Restarts the kube-apiserver of the cluster under test (stopComponent, then up.sh). */
export async function restartApiServer(): Promise<{ downMs: number }> {
  const t0 = Date.now();
  await stopComponent('kube-apiserver');
  await startMissingComponents();
  return { downMs: Date.now() - t0 };
}
