// Remediation timings against the local control plane (hack/cluster; ARC_CLUSTER_DIR, started if
// needed), with the operator in this process and the kubelet fixture running the real service and
// sidecar for each pod. Prints figures; asserts nothing.
//
// 1. Detection to eviction, >= 20 trials: a pod's arcops.dev/PoolHealthy is set False exactly on
//    a whole second (the API server keeps lastTransitionTime in seconds, so the operator then
//    knows the instant exactly); the delay is measured from that instant + unhealthySeconds to
//    (a) the operator's eviction call (its own histogram) and (b) the pod's deletionTimestamp
//    as a watch outside the operator sees it.
// 2. Default settings (unhealthySeconds 30, the sidecar's default thresholds, pool of 5): the
//    time from the onset of real exhaustion (slow queries holding the whole pool) to the
//    sidecar's condition, the eviction, and a replacement pod Running and Ready.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, Watch, setHeaderOptions } from '@kubernetes/client-node';
import type { V1Pod } from '@kubernetes/client-node';
import pino from 'pino';
import { loadConfig } from '../operator/src/config.ts';
import { HttpKubeClient } from '../operator/src/kube.ts';
import { createMetrics } from '../operator/src/metrics.ts';
import { Operator } from '../operator/src/operator.ts';
import { KubeletFixture } from '../test/support/kubelet-fixture.ts';
import { ROOT, clusterDir, fmt, until } from './support.ts';

const run = promisify(execFile);
const POOL = 'arcops.dev/PoolHealthy';

export interface RemediationBenchResult {
  unhealthySeconds: number;
  /** Operator's own view: eviction call minus (False + unhealthySeconds), ms. */
  callMs: number[];
  /** Outside view: deletionTimestamp seen by a watcher minus (False + unhealthySeconds), ms. */
  observedMs: number[];
  defaults: { exhaustedToFalseMs: number; falseToEvictionMs: number; exhaustedToRunningMs: number; exhaustedToReadyMs: number }[];
}

interface World {
  kc: KubeConfig;
  namespace: string;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  kubectl: string;
}

async function world(): Promise<World> {
  await run('bash', [join(ROOT, 'hack/cluster/up.sh')], { env: process.env, maxBuffer: 16 * 1024 * 1024 });
  const kc = new KubeConfig();
  kc.loadFromFile(join(clusterDir(), 'kubeconfig'));
  const kubectl = join(clusterDir(), 'bin', 'kubectl');
  const kcPath = join(clusterDir(), 'kubeconfig');
  await run(kubectl, ['--kubeconfig', kcPath, 'apply', '--server-side', '--force-conflicts', '--field-manager=arc-bench', '-f', join(ROOT, 'crds/arcops.dev_arcdeployments.yaml')]);
  await run(kubectl, ['--kubeconfig', kcPath, 'wait', '--for=condition=Established', '--timeout=60s', 'crd/arcdeployments.arcops.dev']);
  const namespace = `bench-remediation-${randomBytes(3).toString('hex')}`;
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await until('the default ServiceAccount', () => core.readNamespacedServiceAccount({ name: 'default', namespace }).then(() => true), 30_000, 20);
  return { kc, namespace, core, custom: kc.makeApiClient(CustomObjectsApi), kubectl };
}

function startOperator(w: World): { operator: Operator; metrics: ReturnType<typeof createMetrics>; stop(): Promise<void> } {
  const config = loadConfig({ POD_NAME: 'bench-operator', WATCH_NAMESPACES: w.namespace, LEADER_ELECTION: 'off', LOG_LEVEL: 'silent' });
  const client = new HttpKubeClient(w.kc);
  const metrics = createMetrics(undefined, { defaults: false });
  const operator = new Operator(config, { client, logger: pino({ level: 'silent' }), metrics });
  operator.start();
  return {
    operator,
    metrics,
    async stop() {
      await operator.stop();
      client.close();
    },
  };
}

async function createArcd(w: World, name: string, replicas: number, spec: Record<string, unknown>): Promise<void> {
  await w.core.createNamespacedSecret({ namespace: w.namespace, body: { metadata: { name: `${name}-tokens` }, stringData: { tokens: 'bench-remediation-token-1\n' } } });
  await w.custom.createNamespacedCustomObject({
    group: 'arcops.dev',
    version: 'v1alpha1',
    namespace: w.namespace,
    plural: 'arcdeployments',
    body: {
      apiVersion: 'arcops.dev/v1alpha1',
      kind: 'ArcDeployment',
      metadata: { name },
      spec: { replicas, image: 'ghcr.io/arcops/arc-service:0.1.0', sidecarImage: 'ghcr.io/arcops/arc-sidecar:0.1.0', apiTokenSecretRef: { name: `${name}-tokens` }, ...spec },
    },
  });
}

async function pods(w: World, instance: string): Promise<V1Pod[]> {
  return (await w.core.listNamespacedPod({ namespace: w.namespace, labelSelector: `app.kubernetes.io/name=arc,app.kubernetes.io/instance=${instance}` })).items;
}

const ready = (p: V1Pod): boolean => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const live = (ps: V1Pod[]): V1Pod[] => ps.filter((p) => p.metadata?.deletionTimestamp === undefined);

async function allReady(w: World, instance: string, replicas: number): Promise<void> {
  await until(`${replicas} Ready pods of ${instance}`, async () => {
    const l = live(await pods(w, instance));
    return l.length === replicas && l.every(ready);
  }, 120_000, 50);
}

async function setPool(w: World, pod: string, status: 'True' | 'False', at: Date): Promise<void> {
  await w.core.patchNamespacedPodStatus(
    {
      name: pod,
      namespace: w.namespace,
      body: { status: { conditions: [{ type: POOL, status, reason: status === 'True' ? 'Healthy' : 'PoolExhausted', message: 'set by the bench', lastTransitionTime: at }] } },
    },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
}

/** Writes PoolHealthy True on every Running pod that has none (the bench's stand-in sidecar). */
function healthyStandIn(w: World, instance: string): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        for (const p of live(await pods(w, instance))) {
          if (p.status?.phase === 'Running' && p.status.conditions?.find((c) => c.type === POOL) === undefined) await setPool(w, p.metadata?.name ?? '', 'True', new Date());
        }
      } catch {
        // again
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** Watches one pod (outside the operator) and resolves when it is seen going: deletionTimestamp or deleted. */
function watchGoing(w: World, pod: string): { ready: Promise<void>; seen: Promise<number> } {
  let abort: AbortController | undefined;
  let resolveSeen: (ms: number) => void = () => undefined;
  const seen = new Promise<number>((resolve, reject) => {
    resolveSeen = resolve;
    setTimeout(() => reject(new Error(`bench: ${pod} was not evicted within 30 s`)), 30_000).unref();
  });
  const ready = new Watch(w.kc)
    .watch(
      `/api/v1/namespaces/${w.namespace}/pods`,
      { fieldSelector: `metadata.name=${pod}` },
      (phase, obj: V1Pod) => {
        if (phase === 'DELETED' || obj.metadata?.deletionTimestamp !== undefined) {
          resolveSeen(Date.now());
          abort?.abort();
        }
      },
      () => undefined,
    )
    .then((a) => {
      abort = a;
    });
  return { ready, seen };
}

async function sum(metrics: ReturnType<typeof createMetrics>): Promise<[number, number]> {
  const { values } = await metrics.remediationLatency.get();
  const s = values.find((v) => v.metricName === 'arc_operator_remediation_latency_seconds_sum')?.value ?? 0;
  const c = values.find((v) => v.metricName === 'arc_operator_remediation_latency_seconds_count')?.value ?? 0;
  return [s, c];
}

async function latencyTrials(w: World, trials: number, unhealthySeconds: number): Promise<{ callMs: number[]; observedMs: number[] }> {
  const name = 'latency';
  await createArcd(w, name, 3, {
    probe: { intervalSeconds: unhealthySeconds, timeoutSeconds: 1 },
    remediation: { unhealthySeconds, maxPerHour: 1000, cooldownSeconds: 0 },
  });
  const op = startOperator(w);
  const standIn = healthyStandIn(w, name);
  const callMs: number[] = [];
  const observedMs: number[] = [];
  try {
    for (let i = 0; i < trials; i++) {
      await allReady(w, name, 3);
      const victim = live(await pods(w, name))[0]?.metadata?.name ?? '';
      // Wait for a whole second, so that the stored (second-precision) lastTransitionTime is exact.
      await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 2));
      const at = new Date(Math.floor(Date.now() / 1000) * 1000);
      const [s0, c0] = await sum(op.metrics);
      const gone = watchGoing(w, victim);
      await gone.ready;
      await setPool(w, victim, 'False', at);
      const due = at.getTime() + unhealthySeconds * 1000;
      const seenMs = await gone.seen;
      observedMs.push(seenMs - due);
      // The watcher can see the deletion before the operator has recorded its own figure.
      await until('the operator to record the eviction', async () => (await sum(op.metrics))[1] > c0, 5000, 5).catch(() => undefined);
      const [s1, c1] = await sum(op.metrics);
      if (c1 > c0) callMs.push(((s1 - s0) / (c1 - c0)) * 1000);
    }
  } finally {
    await standIn.stop();
    await op.stop();
  }
  return { callMs, observedMs };
}

async function defaultsTrial(w: World, index: number): Promise<RemediationBenchResult['defaults'][number]> {
  const name = `defaults-${index}`;
  await createArcd(w, name, 2, {});
  const op = startOperator(w);
  // The sidecar and the service with their own defaults (pool of 5, 5 s wait; 15 s exhaustion).
  const fixture = new KubeletFixture({ kc: w.kc, namespace: w.namespace, instance: name, serviceBaseEnv: { DUCKDB_THREADS: '1' }, sidecarBaseEnv: {} }).start();
  try {
    await allReady(w, name, 2);
    const victim = [...fixture.pods.keys()][0] ?? '';
    const t0 = Date.now();
    fixture.exhaust(victim, 5);
    let falseAt = 0;
    let evictedAt = 0;
    let runningAt = 0;
    let readyAt = 0;
    const before = new Set(live(await pods(w, name)).map((p) => p.metadata?.name));
    await until('a replacement Running and Ready', async () => {
      const all = await pods(w, name);
      const v = all.find((p) => p.metadata?.name === victim);
      if (falseAt === 0 && v?.status?.conditions?.some((c) => c.type === POOL && c.status === 'False')) falseAt = Date.now();
      if (evictedAt === 0 && (v === undefined || v.metadata?.deletionTimestamp !== undefined)) evictedAt = Date.now();
      const fresh = live(all).filter((p) => !before.has(p.metadata?.name));
      if (runningAt === 0 && fresh.some((p) => p.status?.phase === 'Running')) runningAt = Date.now();
      if (readyAt === 0 && fresh.some(ready)) readyAt = Date.now();
      return readyAt > 0;
    }, 180_000, 50);
    return { exhaustedToFalseMs: falseAt - t0, falseToEvictionMs: evictedAt - falseAt, exhaustedToRunningMs: runningAt - t0, exhaustedToReadyMs: readyAt - t0 };
  } finally {
    await fixture.stop();
    await op.stop();
  }
}

export async function benchRemediation(options: { trials?: number; defaultsTrials?: number; unhealthySeconds?: number } = {}): Promise<RemediationBenchResult> {
  const w = await world();
  const unhealthySeconds = options.unhealthySeconds ?? 2;
  try {
    const { callMs, observedMs } = await latencyTrials(w, options.trials ?? 20, unhealthySeconds);
    const defaults: RemediationBenchResult['defaults'] = [];
    for (let i = 0; i < (options.defaultsTrials ?? 1); i++) defaults.push(await defaultsTrial(w, i));
    return { unhealthySeconds, callMs, observedMs, defaults };
  } finally {
    await w.core.deleteNamespace({ name: w.namespace, propagationPolicy: 'Background' }).catch(() => undefined);
  }
}

function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? Number.NaN;
}

export function printRemediation(r: RemediationBenchResult): void {
  console.log(`\n## Remediation (unhealthySeconds ${r.unhealthySeconds} for the latency trials)`);
  const line = (label: string, v: number[]): void => {
    console.log(`${label.padEnd(58)} n=${v.length}  p50 ${fmt(quantile(v, 0.5))} ms  p95 ${fmt(quantile(v, 0.95))} ms  max ${fmt(Math.max(...v))} ms`);
  };
  line('False + unhealthySeconds -> eviction call (operator)', r.callMs);
  line('False + unhealthySeconds -> deletionTimestamp (watcher)', r.observedMs);
  console.log(`target: p95 < 1000 ms (${quantile(r.observedMs, 0.95) < 1000 ? 'met' : 'NOT met'})`);
  for (const d of r.defaults) {
    console.log(
      `default settings: exhaustion -> condition False ${fmt(d.exhaustedToFalseMs / 1000)} s, False -> eviction ${fmt(d.falseToEvictionMs / 1000)} s, ` +
        `exhaustion -> replacement Running ${fmt(d.exhaustedToRunningMs / 1000)} s, Ready ${fmt(d.exhaustedToReadyMs / 1000)} s`,
    );
  }
}

// `node --conditions=arc-source bench/remediation.ts` runs it alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  printRemediation(await benchRemediation({ trials: Number(process.env['TRIALS'] ?? 20), defaultsTrials: Number(process.env['DEFAULTS_TRIALS'] ?? 1) }));
  process.exit(0);
}
