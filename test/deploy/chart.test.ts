// The Helm chart charts/arc-operator: lint, golden renders (default values and each ci/ option
// file; UPDATE_GOLDEN=1 rewrites them), and what a user relies on in the rendered objects.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RESOURCES } from '../../operator/src/kube.ts';
import { CHART, GOLDEN_DIR, ciFiles, find, helm, parseAll, renderChart } from './chart-support.ts';
import type { K8sObject } from './chart-support.ts';
import { kubeVersion } from '../../hack/sync-manifests.ts';

const cases = [{ name: 'default', files: [] as string[] }, ...ciFiles().map((c) => ({ name: c.name, files: [c.path] }))];

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

function rules(o: K8sObject): Rule[] {
  return o['rules'] as Rule[];
}

function container(objects: K8sObject[]): Record<string, unknown> & { env: { name: string; value?: string }[] } {
  const [dep] = find(objects, 'Deployment');
  const spec = (dep as unknown as { spec: { template: { spec: { containers: unknown[] } } } }).spec.template.spec;
  return spec.containers[0] as Record<string, unknown> & { env: { name: string; value?: string }[] };
}

function envOf(objects: K8sObject[]): Record<string, string | undefined> {
  return Object.fromEntries(container(objects).env.map((e) => [e.name, e.value]));
}

describe('helm lint', () => {
  it.each(cases)('is clean with $name values', async ({ files }) => {
    const { stdout } = await helm(['lint', '--strict', '--kube-version', kubeVersion(), CHART, ...files.flatMap((f) => ['-f', f])]);
    expect(stdout).toContain('0 chart(s) failed');
    expect(stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
  });

  it('refuses a value the schema does not know, and a bad one', async () => {
    await expect(helm(['lint', '--strict', '--kube-version', kubeVersion(), CHART, '--set', 'replicas=2'])).rejects.toThrow(/replicas/);
    await expect(helm(['lint', '--strict', '--kube-version', kubeVersion(), CHART, '--set', 'logLevel=loud'])).rejects.toThrow(/logLevel/);
  });
});

describe('helm template golden files', () => {
  it.each(cases)('$name values render as test/deploy/golden/$name.yaml', async ({ name, files }) => {
    const rendered = await renderChart(files);
    const golden = join(GOLDEN_DIR, `${name}.yaml`);
    if (process.env['UPDATE_GOLDEN'] === '1' || !existsSync(golden)) {
      if (process.env['UPDATE_GOLDEN'] !== '1') throw new Error(`${golden} is missing: run with UPDATE_GOLDEN=1`);
      writeFileSync(golden, rendered);
    }
    expect(rendered, `render differs from ${golden}; if intended, UPDATE_GOLDEN=1`).toBe(readFileSync(golden, 'utf8'));
  });
});

describe('values.yaml', () => {
  it('describes every value the schema knows with a comment right above it', () => {
    const lines = readFileSync(join(CHART, 'values.yaml'), 'utf8').split('\n');
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as SchemaNode;
    const undocumented: string[] = [];
    for (const path of leafPaths(schema)) {
      const at = lineOf(lines, path);
      if (at < 0) undocumented.push(`${path.join('.')} (not in values.yaml)`);
      else if (!/^\s*#/.test(lines[at - 1] ?? '')) undocumented.push(path.join('.'));
    }
    expect(undocumented).toEqual([]);
  });
});

describe('docs/install.md', () => {
  it('upgrades with the values files, never with --reuse-values (it ignores the new chart defaults)', () => {
    const text = readFileSync(join(CHART, '../../docs/install.md'), 'utf8');
    const commands = text.split('\n').filter((l) => /^\s*helm upgrade\b/.test(l));
    expect(commands.length).toBeGreaterThan(0);
    for (const c of commands) expect(c).not.toContain('--reuse-values');
    expect(text).not.toMatch(/`helm upgrade[^`]*--reuse-values/);
  });

  it('lists every value of the chart in its values table', () => {
    const rows = readFileSync(join(CHART, '../../docs/install.md'), 'utf8').split('\n').filter((l) => l.startsWith('| `'));
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as SchemaNode;
    const missing = leafPaths(schema).filter((path) => {
      const full = `\`${path.join('.')}\``;
      const [first] = path;
      const last = path.at(-1);
      return !rows.some((r) => r.includes(full) || (path.length > 1 && r.includes(`\`${first}.`) && r.includes(`.${last}\``)));
    });
    expect(missing.map((p) => p.join('.'))).toEqual([]);
  });
});

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
}

function leafPaths(node: SchemaNode, prefix: string[] = []): string[][] {
  return Object.entries(node.properties ?? {}).flatMap(([k, child]) => (child.properties ? leafPaths(child, [...prefix, k]) : [[...prefix, k]]));
}

/** Line index of a nested key in a two-space-indented YAML file, or -1. */
function lineOf(lines: string[], path: string[]): number {
  let from = 0;
  for (let depth = 0; depth < path.length; depth++) {
    const re = new RegExp(`^${' '.repeat(depth * 2)}${path[depth]}:`);
    const at = lines.findIndex((l, i) => i >= from && re.test(l));
    if (at < 0) return -1;
    from = at;
  }
  return from;
}

describe('the default render', async () => {
  const objects = parseAll(await renderChart());

  it('holds one object of each kind a default install needs, and no monitoring objects', () => {
    const kinds = objects.map((o) => o.kind).sort();
    expect(kinds).toEqual(['ClusterRole', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'Deployment', 'PodDisruptionBudget', 'Role', 'RoleBinding', 'Service', 'ServiceAccount']);
  });

  it('keeps the CRD on uninstall and copies crds/ verbatim', () => {
    const [crd] = find(objects, 'CustomResourceDefinition');
    expect(crd?.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    const source = parseAll(readFileSync(join(CHART, '../../crds/arcops.dev_arcdeployments.yaml'), 'utf8'))[0];
    expect(crd?.['spec']).toEqual(source?.['spec']);
  });

  it('runs the operator with the restricted security context and probes on /healthz and /readyz', () => {
    const c = container(objects);
    expect(c['securityContext']).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c['livenessProbe']).toMatchObject({ httpGet: { path: '/healthz', port: 'metrics' } });
    expect(c['readinessProbe']).toMatchObject({ httpGet: { path: '/readyz', port: 'metrics' } });
    expect(c.env.find((e) => e.name === 'POD_NAME')).toMatchObject({ valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
    expect(c.env.find((e) => e.name === 'POD_NAMESPACE')).toMatchObject({ valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });
    expect(envOf(objects)).toMatchObject({ LEADER_ELECTION: 'on', LEASE_NAME: 'arc-operator-leader', LEASE_NAMESPACE: 'arc-system', METRICS_PORT: '8080' });
    expect(envOf(objects)).not.toHaveProperty('WATCH_NAMESPACES');
  });

  it('selects pods by labels without the chart version', () => {
    const [dep] = find(objects, 'Deployment');
    const selector = (dep as unknown as { spec: { selector: { matchLabels: Record<string, string> } } }).spec.selector.matchLabels;
    expect(Object.keys(selector).sort()).toEqual(['app.kubernetes.io/component', 'app.kubernetes.io/instance', 'app.kubernetes.io/name']);
    const [svc] = find(objects, 'Service');
    expect((svc as unknown as { spec: { selector: unknown } }).spec.selector).toEqual(selector);
  });

  it('grants a rule for every API resource the operator calls, and no wildcard, escalation or secret listing', () => {
    const [role] = find(objects, 'ClusterRole', 'arc-system-arc-operator');
    const granted = rules(role as K8sObject);
    const leaderRole = find(objects, 'Role')[0] as K8sObject;
    const all = [...granted, ...rules(leaderRole)];
    for (const res of Object.values(RESOURCES)) {
      expect(all.some((r) => r.apiGroups.includes(res.group) && r.resources.includes(res.plural)), `${res.plural}.${res.group}`).toBe(true);
    }
    for (const r of all) {
      expect(r.verbs).not.toContain('*');
      expect(r.resources).not.toContain('*');
      expect(r.verbs).not.toContain('deletecollection');
      expect(r.verbs).not.toContain('escalate');
      // delete: only the sidecar's grant from before the shared ClusterRole (a RoleBinding whose
      // roleRef must change, and its Role); never pods or anything else.
      if (r.verbs.includes('delete')) expect(r.resources.every((x) => x === 'rolebindings' || x === 'roles')).toBe(true);
      // bind: only the sidecar ClusterRole, by name.
      if (r.verbs.includes('bind')) expect({ resources: r.resources, names: r.resourceNames }).toEqual({ resources: ['clusterroles'], names: ['arc-system-arc-operator-sidecar'] });
    }
    expect(granted.find((r) => r.resources.includes('secrets'))?.verbs).toEqual(['get']);
    expect(granted.find((r) => r.resources.includes('pods/eviction'))?.verbs).toEqual(['create']);
    expect(granted.find((r) => r.resources.includes('pods'))?.verbs).toEqual(['list', 'watch']);
    expect(granted.some((r) => r.resources.includes('pods/status'))).toBe(false);
    expect(rules(leaderRole).flatMap((r) => r.resources)).toEqual(['leases', 'leases']);
  });

  it("installs the sidecars' ClusterRole (read its pod, patch pod status) and names it to the operator", () => {
    const [sidecar] = find(objects, 'ClusterRole', 'arc-system-arc-operator-sidecar');
    expect(rules(sidecar as K8sObject).map((r) => ({ apiGroups: r.apiGroups, resources: r.resources, verbs: r.verbs }))).toEqual([
      { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
      { apiGroups: [''], resources: ['pods/status'], verbs: ['patch'] },
    ]);
    expect(envOf(objects)['SIDECAR_CLUSTER_ROLE']).toBe('arc-system-arc-operator-sidecar');
  });
});

describe('the watchNamespaces render', async () => {
  const objects = parseAll(await renderChart([ciFiles().find((c) => c.name === 'watch-namespaces')?.path ?? '']));

  it('makes a Role and RoleBinding per namespace instead of cluster-wide RBAC, and sets WATCH_NAMESPACES', () => {
    // The one cluster-scoped object: the ClusterRole the sidecars are bound to in their namespace.
    expect(find(objects, 'ClusterRole').map((r) => r.metadata.name)).toEqual(['arc-system-arc-operator-sidecar']);
    expect(find(objects, 'ClusterRoleBinding')).toEqual([]);
    const roles = find(objects, 'Role', 'arc-operator').map((r) => r.metadata.namespace);
    expect(roles).toEqual(['team-a', 'team-b']);
    const bindings = find(objects, 'RoleBinding', 'arc-operator').map((r) => r.metadata.namespace);
    expect(bindings).toEqual(['team-a', 'team-b']);
    expect(envOf(objects)['WATCH_NAMESPACES']).toBe('team-a,team-b');
  });
});

describe('the monitoring render', async () => {
  const objects = parseAll(await renderChart([ciFiles().find((c) => c.name === 'monitoring')?.path ?? '']));

  it('has a runbook section in docs/runbooks.md for every alert', () => {
    const [rule] = find(objects, 'PrometheusRule');
    const alerts = (rule as unknown as { spec: { groups: { rules: { alert: string; annotations: { runbook_url: string } }[] }[] } }).spec.groups.flatMap((g) => g.rules);
    expect(alerts.map((a) => a.alert).sort()).toEqual(['ArcForbiddenModule', 'ArcOperatorNotReconciling', 'ArcPoolExhausted', 'ArcRemediationFailing', 'ArcRemediationStorm', 'ArcServiceUnreachable']);
    const runbooks = readFileSync(join(CHART, '../../docs/runbooks.md'), 'utf8');
    for (const a of alerts) {
      const anchor = a.annotations.runbook_url.split('#')[1];
      expect(anchor).toBe(a.alert.toLowerCase());
      expect(runbooks, `docs/runbooks.md needs "## ${a.alert}"`).toMatch(new RegExp(`^## ${a.alert}$`, 'm'));
    }
  });

  it('ships a dashboard that is valid JSON', () => {
    const [cm] = find(objects, 'ConfigMap');
    const json = (cm as unknown as { data: Record<string, string> }).data['arc-operator.json'] ?? '';
    expect((JSON.parse(json) as { uid: string }).uid).toBe('arc-operator');
    expect(cm?.metadata.labels?.['grafana_dashboard']).toBe('1');
  });

  it('scrapes the operator and the ArcDeployments pods', () => {
    expect(find(objects, 'ServiceMonitor')).toHaveLength(1);
    expect(find(objects, 'PodMonitor')).toHaveLength(1);
  });
});
