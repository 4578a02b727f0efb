// The chart with real values: long release names, two releases of one name, unsafe leader-election
// values, the operator's PDB and spread, NetworkPolicies, the dashboard's release filter, the
// default image and the CRD's description.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kubeVersion } from '../../hack/sync-manifests.ts';
import { APPLY_KINDS } from '../../operator/src/metrics.ts';
import { SERVICE_PORT, SIDECAR_PORT } from '../../operator/src/spec.ts';
import { CHART, REPO_ROOT, find, helm, parseAll } from './chart-support.ts';
import type { K8sObject } from './chart-support.ts';

const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition']);
const EVERYTHING = [
  '--set', 'serviceMonitor.enabled=true', '--set', 'podMonitor.enabled=true', '--set', 'prometheusRule.enabled=true',
  '--set', 'grafanaDashboard.enabled=true', '--set', 'networkPolicy.enabled=true', '--set', 'networkPolicy.workloadNamespaces={team-a}',
];

async function render(release: string, namespace: string, extra: string[] = []): Promise<K8sObject[]> {
  const { stdout } = await helm(['template', release, CHART, '--namespace', namespace, '--kube-version', kubeVersion(), ...extra]);
  return parseAll(stdout);
}

function podSpec(o: K8sObject): Record<string, unknown> {
  return (o as unknown as { spec: { template: { spec: Record<string, unknown> } } }).spec.template.spec;
}

describe('object names', () => {
  // Helm's own limit for a release name is 53 characters.
  it.each([
    'a'.repeat(43),
    'payments-platform-team-arc-operator-prod-eu-west',
    'x'.repeat(53),
  ])('release %s: every name fits 63 characters and stays unique', async (release) => {
    const objects = await render(release, 'arc-system', EVERYTHING);
    for (const o of objects) expect(o.metadata.name.length, `${o.kind} ${o.metadata.name}`).toBeLessThanOrEqual(63);
    const keys = objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    expect(new Set(keys).size).toBe(keys.length);
    // What refers to a name refers to the object's real name.
    const [svc] = find(objects, 'Service');
    const [rule] = find(objects, 'PrometheusRule');
    expect(JSON.stringify(rule)).toContain(`job=\\"${svc?.metadata.name}\\"`);
    const [dep] = find(objects, 'Deployment');
    const env = (podSpec(dep as K8sObject)['containers'] as { env: { name: string; value?: string }[] }[])[0]?.env ?? [];
    const sidecarRole = env.find((e) => e.name === 'SIDECAR_CLUSTER_ROLE')?.value;
    expect(find(objects, 'ClusterRole', sidecarRole)).toHaveLength(1);
  });

  it('cuts long names with a hash, so two long releases that share a beginning do not collide', async () => {
    const a = await render(`${'p'.repeat(50)}-a1`, 'arc-system');
    const b = await render(`${'p'.repeat(50)}-b2`, 'arc-system');
    const names = (objects: K8sObject[]) => objects.filter((o) => o.kind !== 'CustomResourceDefinition').map((o) => `${o.kind}/${o.metadata.name}`);
    const shared = names(a).filter((n) => names(b).includes(n));
    expect(shared).toEqual([]);
    expect(find(a, 'Service')[0]?.metadata.name).toMatch(/^p{50}-a1-[0-9a-f]{8}$/);
  });

  it('two releases of the same name in two namespaces share no cluster-scoped object but the CRD', async () => {
    const one = await render('arc', 'team-a', ['--set', 'watchNamespaces={team-a}', '--set', 'crds.install=false']);
    const two = await render('arc', 'team-b', ['--set', 'watchNamespaces={team-b}', '--set', 'crds.install=false']);
    const clusterNames = (objects: K8sObject[]) => objects.filter((o) => CLUSTER_SCOPED.has(o.kind)).map((o) => `${o.kind}/${o.metadata.name}`);
    expect(clusterNames(one).length).toBeGreaterThan(0);
    expect(clusterNames(one).filter((n) => clusterNames(two).includes(n))).toEqual([]);
    // Cluster-wide RBAC too.
    const wideOne = await render('arc', 'team-a', ['--set', 'crds.install=false']);
    const wideTwo = await render('arc', 'team-b', ['--set', 'crds.install=false']);
    expect(clusterNames(wideOne).filter((n) => clusterNames(wideTwo).includes(n))).toEqual([]);
  });
});

describe('unsafe leader-election values are refused with a message', () => {
  it.each([
    { what: 'leader election off with 2 replicas', args: ['--set', 'leaderElection.enabled=false'], message: /replicaCount/ },
    { what: 'leader election off with 3 replicas', args: ['--set', 'leaderElection.enabled=false', '--set', 'replicaCount=3'], message: /replicaCount/ },
    { what: 'renewDeadlineSeconds equal to the lease duration', args: ['--set', 'leaderElection.renewDeadlineSeconds=15'], message: /renewDeadlineSeconds \(15\) must be lower than leaderElection.leaseDurationSeconds \(15\)/ },
    { what: 'renewDeadlineSeconds above the lease duration', args: ['--set', 'leaderElection.renewDeadlineSeconds=20'], message: /must be lower than leaderElection.leaseDurationSeconds/ },
    { what: 'retryPeriodSeconds equal to renewDeadlineSeconds', args: ['--set', 'leaderElection.retryPeriodSeconds=10'], message: /retryPeriodSeconds \(10\) must be lower than leaderElection.renewDeadlineSeconds \(10\)/ },
  ])('$what', async ({ args, message }) => {
    await expect(render('arc-operator', 'arc-system', args)).rejects.toThrow(message);
    // helm lint reports a template's `fail` without failing (as INFO); the schema's refusal fails it.
    const lint = await helm(['lint', '--strict', '--kube-version', kubeVersion(), CHART, ...args]).catch((err: unknown) => ({ stdout: String(err), stderr: '' }));
    expect(`${lint.stdout}${lint.stderr}`).toMatch(message);
  });

  it('the template check says why even when the schema is skipped', async () => {
    await expect(render('arc-operator', 'arc-system', ['--skip-schema-validation', '--set', 'leaderElection.enabled=false'])).rejects.toThrow(/every replica would act at once/);
  });

  it.each([
    { what: 'leader election off with 1 replica', args: ['--set', 'leaderElection.enabled=false', '--set', 'replicaCount=1'] },
    { what: 'timings just below each other', args: ['--set-json', 'leaderElection.leaseDurationSeconds=10.5', '--set', 'leaderElection.renewDeadlineSeconds=10', '--set-json', 'leaderElection.retryPeriodSeconds=9.5'] },
  ])('accepts $what', async ({ args }) => {
    expect(find(await render('arc-operator', 'arc-system', args), 'Deployment')).toHaveLength(1);
  });
});

describe('the operator pods', () => {
  it('get a PodDisruptionBudget and a spread over nodes and zones with 2 replicas, neither with 1', async () => {
    const two = await render('arc-operator', 'arc-system');
    const [pdb] = find(two, 'PodDisruptionBudget');
    const [dep] = find(two, 'Deployment');
    const selector = (dep as unknown as { spec: { selector: { matchLabels: Record<string, string> } } }).spec.selector.matchLabels;
    expect(pdb?.['spec']).toEqual({ maxUnavailable: 1, selector: { matchLabels: selector } });
    const spread = podSpec(dep as K8sObject)['topologySpreadConstraints'] as { topologyKey: string; labelSelector: unknown }[];
    expect(spread.map((c) => c.topologyKey)).toEqual(['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
    for (const c of spread) expect(c.labelSelector).toEqual({ matchLabels: selector });

    const one = await render('arc-operator', 'arc-system', ['--set', 'replicaCount=1']);
    expect(find(one, 'PodDisruptionBudget')).toEqual([]);
    expect(podSpec(find(one, 'Deployment')[0] as K8sObject)['topologySpreadConstraints']).toBeUndefined();
  });
});

describe('NetworkPolicies', () => {
  it('are off by default', async () => {
    expect(find(await render('arc-operator', 'arc-system'), 'NetworkPolicy')).toEqual([]);
  });

  it("open the ports each part really listens on, and the API server's ports out", async () => {
    const objects = await render('arc-operator', 'arc-system', ['--set', 'networkPolicy.enabled=true', '--set', 'watchNamespaces={team-a,team-b}']);
    const policies = find(objects, 'NetworkPolicy') as unknown as { metadata: { namespace: string }; spec: { ingress: { ports: { port: number }[] }[]; egress: { ports: { port: number }[] }[] } }[];
    expect(policies.map((p) => p.metadata.namespace)).toEqual(['arc-system', 'team-a', 'team-b']);
    const [operator, ...workloads] = policies;
    const [dep] = find(objects, 'Deployment');
    const containerPorts = (podSpec(dep as K8sObject)['containers'] as { ports: { containerPort: number }[] }[])[0]?.ports.map((p) => p.containerPort);
    expect(operator?.spec.ingress.flatMap((r) => r.ports.map((p) => p.port))).toEqual(containerPorts);
    expect(operator?.spec.egress.flatMap((r) => r.ports.map((p) => p.port))).toEqual([443, 6443]);
    for (const w of workloads) {
      // The ports of the pods the operator makes (operator/src/desired.ts).
      expect(w.spec.ingress.flatMap((r) => r.ports.map((p) => p.port))).toEqual([SERVICE_PORT, SIDECAR_PORT]);
      expect(w.spec.egress.flatMap((r) => r.ports.map((p) => p.port))).toEqual([443, 6443]);
    }
  });
});

describe('small points', () => {
  it("the dashboard's operator panels show this release's operator only", async () => {
    const objects = await render('team-x', 'team-x-ops', ['--set', 'grafanaDashboard.enabled=true']);
    const [cm] = find(objects, 'ConfigMap');
    const dash = JSON.parse((cm as unknown as { data: Record<string, string> }).data['arc-operator.json'] ?? '{}') as {
      panels: { targets?: { expr: string }[] }[];
      templating: { list: { name: string; current?: { value: string } }[] };
    };
    const exprs = dash.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    const operatorSeries = exprs.flatMap((e) => [...e.matchAll(/arc_operator_\w+(\{[^}]*\})?/g)].map((m) => m[0]));
    expect(operatorSeries.length).toBeGreaterThan(0);
    for (const series of operatorSeries) expect(series).toContain('{namespace="$operator_namespace",job="$operator_job"');
    const current = Object.fromEntries(dash.templating.list.map((v) => [v.name, v.current?.value]));
    expect(current['operator_namespace']).toBe('team-x-ops');
    expect(current['operator_job']).toBe(find(objects, 'Service')[0]?.metadata.name);
  });

  it('the default operator image sits beside the images the samples use', async () => {
    const sample = readFileSync(join(REPO_ROOT, 'deploy/samples/arcdeployment-basic.yaml'), 'utf8');
    const serviceImage = /^\s*image:\s*(\S+):\S+$/m.exec(sample)?.[1] ?? '';
    const [dep] = find(await render('arc-operator', 'arc-system'), 'Deployment');
    const image = (podSpec(dep as K8sObject)['containers'] as { image: string }[])[0]?.image ?? '';
    expect(image.replace(/:[^:/]+$/, '')).toBe(serviceImage.replace(/arc-service$/, 'arc-operator'));
  });

  it("the CRD's description names what the operator owns for each ArcDeployment, and no Role of its own", () => {
    const crd = parseAll(readFileSync(join(REPO_ROOT, 'crds/arcops.dev_arcdeployments.yaml'), 'utf8'))[0] as unknown as {
      spec: { versions: { schema: { openAPIV3Schema: { description: string } } }[] };
    };
    const description = crd.spec.versions[0]?.schema.openAPIV3Schema.description ?? '';
    for (const kind of APPLY_KINDS) expect(description, kind).toContain(kind);
    expect(description).not.toMatch(/\bRole\b/);
  });
});
