// Helpers for the operator's fault tests (cluster tier): the invariant every fault test checks
// (pods down because of the operator never exceed maxUnavailable), the operator as a real child
// process (node operator/src/main.ts, as it runs in its container: its own HTTP endpoints, its
// own logs, killable with any signal), and a reader for its Prometheus text.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { expect } from 'vitest';
import { eventually, kubeconfigPath } from '../cluster/namespace.ts';
import { freePort } from '../../bench/support.ts';
import { FAST_OPERATOR_ENV, repoRoot } from './cluster-helpers.ts';

export { freePort };

const POOL = 'arcops.dev/PoolHealthy';

export const podReady = (p: V1Pod): boolean => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
export const podPool = (p: V1Pod): { status?: string; reason?: string } | undefined => p.status?.conditions?.find((c) => c.type === POOL);

/** Live (not deleting) pods of an ArcDeployment. */
export async function livePods(kc: KubeConfig, namespace: string, instance: string): Promise<V1Pod[]> {
  const list = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace, labelSelector: `app.kubernetes.io/name=arc,app.kubernetes.io/instance=${instance}` });
  return list.items.filter((p) => p.metadata?.deletionTimestamp === undefined);
}

export interface InvariantWatcher {
  /** Stops sampling; asserts that it sampled and that the worst value stayed within maxUnavailable. */
  stop(): Promise<number>;
  /** Successful samples so far (a watcher that never sampled could not fail). */
  readonly samples: number;
  /** Names of pods seen live and later deleting or gone, in the order they went. */
  readonly gone: readonly string[];
}

/**
 * Samples the pods every `intervalMs`: pods down because of disruption must stay within
 * maxUnavailable. Those are the pods missing from `replicas` (evicted, being deleted) and the
 * replacements not yet ready without their own pool being unhealthy. Pods already there at the
 * first sample are not counted while live: the operator can only take them down by evicting them
 * (then they are missing), and kwok follows a readiness gate with a lag, so a pod whose pool
 * just recovered is briefly not Ready by its own doing. Samples that fail (API server or etcd
 * down) are skipped.
 */
export function watchInvariant(
  ns: { kc: KubeConfig; name: string },
  instance: string,
  replicas: number,
  maxUnavailable: number,
  { intervalMs = 100 }: { intervalMs?: number } = {},
): InvariantWatcher {
  let running = true;
  let worst = 0;
  let samples = 0;
  let worstAt = '';
  const seen = new Set<string>();
  const gone: string[] = [];
  let original: Set<string> | undefined;
  const loop = (async () => {
    while (running) {
      try {
        const live = await livePods(ns.kc, ns.name, instance);
        const names = new Set(live.map((p) => p.metadata?.name ?? ''));
        original ??= names;
        for (const name of seen) if (!names.has(name) && !gone.includes(name)) gone.push(name);
        for (const name of names) seen.add(name);
        const notReady = live.filter((p) => !original?.has(p.metadata?.name ?? '') && !podReady(p) && podPool(p)?.status !== 'False');
        const down = Math.max(0, replicas - live.length) + notReady.length;
        if (down > worst) worstAt = `${live.length} live, replacements not ready: ${notReady.map((p) => p.metadata?.name).join(', ')}`;
        worst = Math.max(worst, down);
        samples++;
      } catch {
        // the API server may be down: try again
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      expect(samples, 'invariant samples').toBeGreaterThan(0);
      expect(worst, `pods down because of remediation (worst: ${worstAt})`).toBeLessThanOrEqual(maxUnavailable);
      return worst;
    },
    get samples() {
      return samples;
    },
    get gone() {
      return gone;
    },
  };
}

/** Sums a Prometheus text metric's samples whose labels include `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x): [string, string] => [x[1] ?? '', x[2] ?? '']));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(m[3]);
  }
  return sum;
}


export interface OperatorProcess {
  identity: string;
  proc: ChildProcess;
  pid: number;
  /** Its pino log lines so far, parsed. */
  readonly logs: readonly Record<string, unknown>[];
  /** GET one of its endpoints on loopback: status and body (status 0 when nothing answered). */
  http(path: '/healthz' | '/readyz' | '/metrics'): Promise<{ status: number; body: string }>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  readonly exited: boolean;
  /** SIGTERM (releases the Lease) and waits; SIGKILL after 15 s. */
  stop(): Promise<void>;
  /** SIGKILL: a crash, the Lease is left to run out. Resolves once the process is gone. */
  kill(): Promise<void>;
}


/**
 * The operator as a child process (`node --conditions=arc-source operator/src/main.ts`), scoped
 * to one namespace (its Lease lives there too), its HTTP endpoints on a free loopback port.
 * Resolves once /readyz answers 200 (caches filled).
 */
export async function spawnOperator(namespace: string, identity: string, env: Record<string, string> = {}): Promise<OperatorProcess> {
  const port = await freePort();
  const proc = spawn(process.execPath, ['--conditions=arc-source', 'operator/src/main.ts'], {
    cwd: repoRoot,
    env: {
      PATH: process.env['PATH'] ?? '',
      KUBECONFIG: kubeconfigPath(),
      POD_NAME: identity,
      WATCH_NAMESPACES: namespace,
      LEASE_NAMESPACE: namespace,
      METRICS_HOST: '127.0.0.1',
      METRICS_PORT: String(port),
      LOG_LEVEL: 'info',
      ...FAST_OPERATOR_ENV,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let partial = '';
  proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line });
      }
    }
  });
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const base = `http://127.0.0.1:${port}`;
  const get = async (path: string): Promise<{ status: number; body: string }> => {
    try {
      const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5000) });
      return { status: res.status, body: await res.text() };
    } catch {
      return { status: 0, body: '' };
    }
  };
  await eventually(`operator ${identity} /readyz`, async () => {
    if (proc.exitCode !== null) throw new Error(`operator ${identity} exited with ${proc.exitCode}: ${stderr}`);
    return (await get('/readyz')).status === 200;
  }, { timeoutMs: 60_000, intervalMs: 200 }).catch((err: unknown) => {
    proc.kill('SIGKILL');
    throw err;
  });
  return {
    identity,
    proc,
    pid: proc.pid ?? 0,
    logs,
    http: get,
    async metric(name, labels = {}) {
      const res = await get('/metrics');
      if (res.status !== 200) throw new Error(`operator ${identity} /metrics answered ${res.status}`);
      return metricValue(res.body, name, labels);
    },
    get exited() {
      return proc.exitCode !== null || proc.signalCode !== null;
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(killer);
    },
    async kill() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exited;
    },
  };
}
