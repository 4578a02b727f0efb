// What one ArcDeployment status write costs the API server, against the local control plane
// (hack/cluster; ARC_CLUSTER_DIR; started if needed). The operator writes ~5 per ArcDeployment
// while it converges, and at 1000 they are most of the API server CPU it adds to what Kubernetes
// alone spends on the same objects (docs/benchmarks.md). Prints figures; asserts nothing.
//
//   node --conditions=arc-source bench/status-write.ts [--seconds S] [--rounds R]
//
// In each round, for the CRD as shipped (crds/) and then for the same CRD with every
// x-kubernetes-validations rule taken out (the baseline: what the rules cost is the difference),
// 4 writers write the status of 4 ArcDeployments of a fresh namespace for S seconds the way
// Executor.writeStatus does (server-side apply through the status subresource, field manager
// arc-operator, force), each write changing a counter and a condition. API server CPU is read
// from /proc before and after. The shipped CRD is applied again at the end.
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { HttpKubeClient, RESOURCES } from '../operator/src/kube.ts';
import { API_VERSION, FIELD_MANAGER, KIND } from '../operator/src/types.ts';
import { ROOT, clusterDir, cpuSeconds, deleteNamespace, fmt, median } from './support.ts';

const run = promisify(execFile);
const CRD = join(ROOT, 'crds/arcops.dev_arcdeployments.yaml');
const WRITERS = 4;

export interface StatusWriteResult {
  seconds: number;
  /** API server CPU per status write, ms, one value per round. */
  shipped: number[];
  noRules: number[];
  /** Status writes per second, per round (4 writers). */
  shippedRate: number[];
  noRulesRate: number[];
}

function withoutRules(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutRules);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([k]) => k !== 'x-kubernetes-validations')
      .map(([k, v]) => [k, withoutRules(v)]),
  );
}

function applyCrd(kubectl: string, kubeconfig: string, manifest: string): void {
  const r = spawnSync(kubectl, ['--kubeconfig', kubeconfig, 'apply', '--server-side', '--force-conflicts', '--field-manager=arc-bench', '-f', '-'], { input: manifest, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench status-write: kubectl apply of the CRD failed: ${r.stderr}`);
}

function status(i: number, name: string): Record<string, unknown> {
  const ready = i % 4;
  const at = '2026-01-01T00:00:00Z';
  return {
    observedGeneration: 1,
    replicas: 3,
    readyReplicas: ready,
    availableReplicas: ready,
    updatedReplicas: 3,
    healthyReplicas: 3,
    selector: `app.kubernetes.io/name=arc,app.kubernetes.io/instance=${name}`,
    conditions: [
      { type: 'Available', status: ready >= 2 ? 'True' : 'False', reason: ready >= 2 ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable', message: `${ready} of 3 pods ready`, lastTransitionTime: at, observedGeneration: 1 },
      { type: 'Progressing', status: 'True', reason: 'RolloutComplete', message: 'all 3 pods run the current template', lastTransitionTime: at, observedGeneration: 1 },
      { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'no fault', lastTransitionTime: at, observedGeneration: 1 },
    ],
    remediationState: { evictionTimes: [] },
  };
}

/** One round for the CRD as it is on the cluster now: ms of API server CPU per write, writes/s. */
async function round(client: HttpKubeClient, core: CoreV1Api, apiServerPid: number, seconds: number): Promise<{ ms: number; rate: number }> {
  const namespace = `bench-status-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  try {
    const names = Array.from({ length: WRITERS }, (_, i) => `arc-${i}`);
    for (const name of names) {
      await client.create(RESOURCES.arcDeployment, namespace, {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name },
        spec: { replicas: 3, image: 'registry.example.com/arc/service:1.0', sidecarImage: 'registry.example.com/arc/sidecar:1.0', apiTokenSecretRef: { name: 'arc-tokens' } },
      });
    }
    let writes = 0;
    const cpu0 = cpuSeconds(apiServerPid);
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    await Promise.all(
      names.map(async (name) => {
        for (let i = 1; performance.now() < end; i++) {
          const body = { apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace }, status: status(i, name) };
          await client.apply(RESOURCES.arcDeployment, body, { fieldManager: FIELD_MANAGER, force: true, subresource: 'status' });
          writes++;
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    return { ms: ((cpuSeconds(apiServerPid) - cpu0) / writes) * 1000, rate: writes / elapsed };
  } finally {
    await deleteNamespace(core, namespace, 500);
  }
}

export async function benchStatusWrite(options: { seconds?: number; rounds?: number } = {}): Promise<StatusWriteResult> {
  const seconds = options.seconds ?? 20;
  const rounds = options.rounds ?? 3;
  await run('bash', [join(ROOT, 'hack/cluster/up.sh')], { maxBuffer: 16 * 1024 * 1024 });
  const kubeconfig = join(clusterDir(), 'kubeconfig');
  const kubectl = join(clusterDir(), 'bin', 'kubectl');
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const client = new HttpKubeClient(kc, { userAgent: 'arc-bench-status-write' });
  const core = kc.makeApiClient(CoreV1Api);
  const apiServerPid = Number(readFileSync(join(clusterDir(), 'pids', 'kube-apiserver.pid'), 'utf8').trim());
  const shippedText = readFileSync(CRD, 'utf8');
  const noRulesText = parseAllDocuments(shippedText)
    .map((d) => JSON.stringify(withoutRules(d.toJSON())))
    .join('\n---\n');
  const result: StatusWriteResult = { seconds, shipped: [], noRules: [], shippedRate: [], noRulesRate: [] };
  try {
    for (let r = 0; r < rounds; r++) {
      for (const variant of ['shipped', 'noRules'] as const) {
        applyCrd(kubectl, kubeconfig, variant === 'shipped' ? shippedText : noRulesText);
        // The API server serves the new schema a moment after the apply returns.
        await new Promise((resolve) => setTimeout(resolve, 3000));
        const { ms, rate } = await round(client, core, apiServerPid, seconds);
        result[variant].push(ms);
        result[variant === 'shipped' ? 'shippedRate' : 'noRulesRate'].push(rate);
      }
    }
  } finally {
    applyCrd(kubectl, kubeconfig, shippedText);
  }
  return result;
}

export function printStatusWrite(r: StatusWriteResult): void {
  const list = (xs: readonly number[]): string => xs.map((x) => fmt(x, 2)).join(', ');
  console.log(`\n== ArcDeployment status writes: API server CPU per write (${WRITERS} writers, ${r.seconds} s per round, server-side apply of status as the operator writes it) ==`);
  console.log(`  CRD as shipped (crds/):            ${list(r.shipped)} ms; median ${fmt(median(r.shipped), 2)} ms, ${fmt(median(r.shippedRate), 0)} writes/s`);
  console.log(`  baseline, the CRD without rules:   ${list(r.noRules)} ms; median ${fmt(median(r.noRules), 2)} ms, ${fmt(median(r.noRulesRate), 0)} writes/s`);
  console.log(`  ratio shipped / without rules: ${fmt(median(r.shipped) / median(r.noRules), 3)} (what the x-kubernetes-validations rules add to every status write)`);
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const arg = (name: string): number | undefined => {
    const i = process.argv.indexOf(name);
    return i < 0 ? undefined : Number(process.argv[i + 1]);
  };
  const opts: { seconds?: number; rounds?: number } = {};
  const seconds = arg('--seconds');
  const rounds = arg('--rounds');
  if (seconds !== undefined) opts.seconds = seconds;
  if (rounds !== undefined) opts.rounds = rounds;
  printStatusWrite(await benchStatusWrite(opts));
}
