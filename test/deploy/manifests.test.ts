// The copies of the CRD (chart, deploy/crd) and the kustomize bases rendered from the chart stay
// identical to what hack/sync-manifests.ts generates from their sources; the kustomize install
// carries the chart's RBAC.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, driftedFiles, generateManifests } from '../../hack/sync-manifests.ts';
import { stableStringify } from '../../operator/src/hash.ts';
import { find, kubectlLocal, parseAll, renderChart } from './chart-support.ts';

describe('hack/sync-manifests.ts', () => {
  const temp = mkdtempSync(join(tmpdir(), 'arc-manifests-'));
  afterAll(() => rmSync(temp, { recursive: true, force: true }));

  it('finds every copy in the repository up to date (run `npm run manifests:sync` after editing crds/ or the chart)', () => {
    expect(driftedFiles(REPO_ROOT, generateManifests())).toEqual([]);
  });

  it('names the copies that drifted when the CRD source changes or a copy is edited by hand', () => {
    for (const dir of ['crds', 'charts', 'deploy', 'hack/cluster']) cpSync(join(REPO_ROOT, dir), join(temp, dir), { recursive: true });
    expect(driftedFiles(temp, generateManifests(temp))).toEqual([]);

    const source = join(temp, 'crds/arcops.dev_arcdeployments.yaml');
    writeFileSync(source, readFileSync(source, 'utf8').replace('shortNames: [arcd]', 'shortNames: [arcd, arcdep]'));
    const handEdited = join(temp, 'deploy/rbac/cluster_role.yaml');
    writeFileSync(handEdited, readFileSync(handEdited, 'utf8').replace('verbs: [get]', 'verbs: [get, list]'));

    expect(driftedFiles(temp, generateManifests(temp)).sort()).toEqual([
      'charts/arc-operator/templates/crd.yaml',
      'deploy/crd/arcops.dev_arcdeployments.yaml',
      'deploy/rbac/cluster_role.yaml',
    ]);
  });
});

describe('kubectl apply -k deploy/default', async () => {
  const kustomized = parseAll(await kubectlLocal(['kustomize', join(REPO_ROOT, 'deploy/default')]));
  const charted = parseAll(await renderChart());

  it('installs the namespace, the CRD, the RBAC, the operator and its metrics Service', () => {
    expect(kustomized.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ClusterRole/arc-operator-system-arc-operator',
      'ClusterRole/arc-operator-system-arc-operator-sidecar',
      'ClusterRoleBinding/arc-operator-system-arc-operator',
      'CustomResourceDefinition/arcdeployments.arcops.dev',
      'Deployment/arc-operator',
      'Namespace/arc-operator-system',
      'Role/arc-operator-leader-election',
      'RoleBinding/arc-operator-leader-election',
      'Service/arc-operator-metrics',
      'ServiceAccount/arc-operator',
    ]);
    for (const o of kustomized.filter((x) => !['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding'].includes(x.kind))) {
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('arc-operator-system');
    }
  });

  it('grants exactly the rules of the chart', () => {
    // Cluster-scoped names start with the namespace (arc-operator-system here, arc-system in the chart render).
    for (const [kind, name] of [['ClusterRole', 'arc-operator'], ['ClusterRole', 'arc-operator-sidecar'], ['Role', undefined]] as const) {
      const rulesOf = (objects: typeof kustomized, ns: string): unknown =>
        objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === `${ns}-${name}`))?.['rules'];
      const unNamespaced = (rules: unknown): unknown => JSON.parse(JSON.stringify(rules ?? null).replaceAll('arc-operator-system-', '').replaceAll('arc-system-', '')) as unknown;
      expect(rulesOf(kustomized, 'arc-operator-system'), `${kind} ${name ?? ''}`).toBeDefined();
      expect(unNamespaced(rulesOf(kustomized, 'arc-operator-system')), `${kind} ${name ?? ''}`).toEqual(unNamespaced(rulesOf(charted, 'arc-system')));
    }
    const [binding] = find(kustomized, 'ClusterRoleBinding');
    expect(binding?.['subjects']).toEqual([{ kind: 'ServiceAccount', name: 'arc-operator', namespace: 'arc-operator-system' }]);
  });

  it('runs the same operator container as the chart', () => {
    const spec = (o: unknown): unknown => (o as { spec: { template: { spec: unknown } } }).spec.template.spec;
    const [k] = find(kustomized, 'Deployment');
    const [c] = find(charted, 'Deployment');
    // Key order aside (kustomize sorts some maps).
    const envOf = (o: unknown): unknown => stableStringify(spec(o)).replaceAll('arc-operator-system', 'NS').replaceAll('arc-system', 'NS');
    expect(envOf(k)).toBe(envOf(c));
  });
});
