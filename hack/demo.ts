// `npm run demo`: the whole loop on the local control plane, in a few minutes.
//   1. brings the local control plane up (hack/cluster/up.sh) and installs the CRD,
//   2. runs the operator in this process and applies an ArcDeployment of 3 pods,
//   3. runs each Running pod's processes: the real query service and the real sidecar, on
//      loopback (kwok runs no containers; test/support/kubelet-fixture.ts stands in for the
//      kubelet of our two containers),
//   4. exhausts one pod's real pool with slow queries and prints the timeline: the sidecar's
//      condition flip, the eviction, the replacement Running and healthy, the status.
// Exits 0 when the sick pod was replaced, 1 otherwise. Only loopback is ever dialled.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, CustomObjectsApi, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import pino from 'pino';
import { loadConfig } from '../operator/src/config.ts';
import { HttpKubeClient } from '../operator/src/kube.ts';
import { createMetrics } from '../operator/src/metrics.ts';
import { Operator } from '../operator/src/operator.ts';
import { KubeletFixture } from '../test/support/kubelet-fixture.ts';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..');
const clusterDir = process.env.ARC_CLUSTER_DIR ?? join(ROOT, '.cluster');
const kubeconfig = join(clusterDir, 'kubeconfig');
const NS = 'arc-demo';
const NAME = 'arc-demo';
const TOKEN = 'demo-token-0123456789';
const t0 = Date.now();

function say(what: string): void {
  const s = ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
  console.log(`${s}s  ${what}`);
}

function kubectl(args: string[]): string {
  return execFileSync(join(clusterDir, 'bin', 'kubectl'), ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8' });
}

function poolHealth(pod: V1Pod): string {
  const c = pod.status?.conditions?.find((x) => x.type === 'arcops.dev/PoolHealthy');
  return c === undefined ? 'unknown' : `${c.status === 'True' ? 'healthy' : 'UNHEALTHY'} (${c.reason ?? ''})`;
}

function podLine(pod: V1Pod): string {
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' ? 'Ready' : 'not Ready';
  const gone = pod.metadata?.deletionTimestamp !== undefined ? ', being deleted' : '';
  return `${pod.status?.phase ?? 'Pending'}, ${ready}, pool ${poolHealth(pod)}${gone}`;
}

async function main(): Promise<number> {
  say('starting the local control plane (npm run cluster:up; the first run builds it from Go modules)');
  execFileSync('bash', [join(ROOT, 'hack/cluster/up.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
  kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(ROOT, 'crds/arcops.dev_arcdeployments.yaml')]);
  kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/arcdeployments.arcops.dev']);
  kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--wait=true']);
  kubectl(['create', 'namespace', NS]);
  kubectl(['-n', NS, 'create', 'secret', 'generic', 'arc-tokens', `--from-literal=tokens=${TOKEN}`]);
  say(`CRD installed, namespace ${NS} ready`);

  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const config = loadConfig({ POD_NAME: 'demo-operator', WATCH_NAMESPACES: NS, LEASE_NAMESPACE: NS, LOG_LEVEL: 'silent' });
  const client = new HttpKubeClient(kc, { userAgent: 'arc-operator-demo' });
  const operator = new Operator(config, { client, logger: pino({ level: 'silent' }), metrics: createMetrics(undefined, { defaults: false }) });
  operator.start();
  say('operator running (leader election on a Lease in the namespace)');

  const fixture = new KubeletFixture({
    kc,
    namespace: NS,
    instance: NAME,
    serviceEnv: { ARC_API_TOKENS: TOKEN },
  }).start();
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);

  const seen = new Map<string, string>();
  let stop = false;
  const watch = (async () => {
    while (!stop) {
      try {
        const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: `app.kubernetes.io/instance=${NAME}` });
        const names = new Set<string>();
        for (const p of pods.items) {
          const name = p.metadata?.name ?? '?';
          names.add(name);
          const line = podLine(p);
          if (seen.get(name) !== line) say(`pod ${name}: ${line}`);
          seen.set(name, line);
        }
        for (const name of [...seen.keys()]) {
          if (!names.has(name)) {
            say(`pod ${name}: gone`);
            seen.delete(name);
          }
        }
      } catch {
        /* the apiserver may be busy: look again */
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();

  const until = async (what: string, ms: number, fn: () => Promise<boolean> | boolean): Promise<void> => {
    const end = Date.now() + ms;
    while (!(await fn())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const healthyPods = async () => {
    const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: `app.kubernetes.io/instance=${NAME}` });
    return pods.items.filter((p) => p.metadata?.deletionTimestamp === undefined && poolHealth(p).startsWith('healthy'));
  };
  let code = 1;
  try {
    await custom.createNamespacedCustomObject({
      group: 'arcops.dev',
      version: 'v1alpha1',
      namespace: NS,
      plural: 'arcdeployments',
      body: {
        apiVersion: 'arcops.dev/v1alpha1',
        kind: 'ArcDeployment',
        metadata: { name: NAME },
        spec: {
          replicas: 3,
          image: 'example.invalid/arc-service:demo',
          sidecarImage: 'example.invalid/arc-sidecar:demo',
          apiTokenSecretRef: { name: 'arc-tokens' },
          pool: { size: 2, waitTimeoutSeconds: 2 },
          probe: { intervalSeconds: 2, timeoutSeconds: 1, oldestWaitMaxSeconds: 1.5 },
          remediation: { unhealthySeconds: 3 },
        },
      },
    });
    say(`applied ArcDeployment ${NAME}: 3 replicas, pool of 2, remediation after 3 s unhealthy`);
    await until('3 healthy pods', 120_000, async () => (await healthyPods()).length === 3);
    say('all 3 pods Running with healthy pools: now exhausting one pod\'s real pool with slow queries');
    const victim = [...fixture.pods.keys()][0]!;
    fixture.exhaust(victim);
    await until(`${victim} to be replaced`, 120_000, async () => !fixture.pods.has(victim) && (await healthyPods()).length === 3);
    const arcd = (await custom.getNamespacedCustomObject({ group: 'arcops.dev', version: 'v1alpha1', namespace: NS, plural: 'arcdeployments', name: NAME })) as {
      status?: { remediations?: Array<Record<string, unknown>>; healthyReplicas?: number; readyReplicas?: number };
    };
    say(`${victim} was evicted and replaced; 3 healthy pods again`);
    for (const r of arcd.status?.remediations ?? []) say(`status.remediations: ${JSON.stringify(r)}`);
    console.log(`\n${kubectl(['-n', NS, 'get', 'arcd', NAME])}`);
    console.log(kubectl(['-n', NS, 'get', 'events', '--field-selector', `involvedObject.kind=ArcDeployment`, '-o', 'custom-columns=REASON:.reason,MESSAGE:.message']));
    code = 0;
  } catch (err) {
    say(`demo failed: ${(err as Error).message}`);
  } finally {
    stop = true;
    await watch;
    await fixture.stop();
    await operator.stop({ release: true });
    client.close();
    kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--wait=false']);
    say('cleaned up (npm run cluster:down stops the control plane)');
  }
  return code;
}

process.exit(await main());
