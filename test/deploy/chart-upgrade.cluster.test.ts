// The chart on a real API server beyond a plain install: an upgrade from the previous chart
// version (CRD included, no --reuse-values), two releases of one name in two namespaces side by
// side, a release name at Helm's limit, and kubeconform against schemas generated here from this
// API server's own OpenAPI (our Kubernetes version, and our CRD as installed).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeVersion, toolPath } from '../../hack/sync-manifests.ts';
import { eventually, kubeconfigPath, useTestNamespace } from '../cluster/namespace.ts';
import { kubectl, repoRoot } from '../operator/cluster-helpers.ts';
import { ciFiles, parseAll } from './chart-support.ts';
import { writeKubeconformSchemas } from './openapi-schemas.ts';

const run = promisify(execFile);
const CHART = join(repoRoot, 'charts/arc-operator');

async function helm(args: string[]): Promise<string> {
  try {
    const { stdout } = await run(toolPath('helm'), ['--kubeconfig', kubeconfigPath(), ...args], { maxBuffer: 32 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`helm ${args.join(' ')}: ${e.stderr || e.message}`, { cause: err });
  }
}

async function git(args: string[]): Promise<string> {
  const { stdout } = await run('git', ['-C', repoRoot, ...args], { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' });
  return stdout;
}

function versionOf(chartYaml: string): string {
  return /^version:\s*(\S+)/m.exec(chartYaml)?.[1] ?? '';
}

/** The newest commit whose chart has another version than the working tree's, and that version. */
async function previousChartRevision(): Promise<{ commit: string; version: string }> {
  const current = versionOf(readFileSync(join(CHART, 'Chart.yaml'), 'utf8'));
  const commits = (await git(['log', '--format=%H', '--', 'charts/arc-operator/Chart.yaml'])).trim().split('\n').filter(Boolean);
  for (const c of commits) {
    const parent = `${c}^`;
    const text = await git(['show', `${parent}:charts/arc-operator/Chart.yaml`]).catch(() => '');
    const version = versionOf(text);
    if (version !== '' && version !== current) return { commit: (await git(['rev-parse', parent])).trim(), version };
  }
  throw new Error(`no earlier chart version than ${current} in the git history (a shallow clone? fetch the history)`);
}

describe('helm upgrade from the previous chart version', () => {
  const ns = useTestNamespace('arc-upgrade');
  const release = `up-${randomBytes(3).toString('hex')}`;
  const fullname = `${release}-arc-operator`;
  let dir: string;
  let previous: { commit: string; version: string };

  beforeAll(async () => {
    previous = await previousChartRevision();
    dir = mkdtempSync(join(tmpdir(), 'arc-previous-chart-'));
    const { stdout } = await run('git', ['-C', repoRoot, 'archive', '--format=tar', previous.commit, 'charts/arc-operator'], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
    writeFileSync(join(dir, 'chart.tar'), stdout);
    await run('tar', ['-xf', join(dir, 'chart.tar'), '-C', dir]);
  });
  afterAll(async () => {
    await helm(['uninstall', release, '-n', ns.name, '--wait', '--timeout', '60s']).catch(() => undefined);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('installs the previous version, then upgrades to this one with the same values: deployed, CRD and RBAC renewed, operator Running', async () => {
    const values = join(dir, 'values.yaml');
    writeFileSync(values, 'replicaCount: 1\nleaderElection:\n  leaseName: upgrade-test-leader\n');
    await helm(['install', release, join(dir, 'charts/arc-operator'), '-n', ns.name, '--take-ownership', '-f', values, '--wait', '--timeout', '120s']);
    const before = JSON.parse(await helm(['list', '-n', ns.name, '-o', 'json'])) as { name: string; chart: string }[];
    expect(before.find((r) => r.name === release)?.chart).toBe(`arc-operator-${previous.version}`);
    // An ArcDeployment made under the old CRD stays valid under the new one.
    await kubectl(['-n', ns.name, 'apply', '-f', join(repoRoot, 'deploy/samples/arcdeployment-basic.yaml')]);

    await helm(['upgrade', release, CHART, '-n', ns.name, '--take-ownership', '-f', values, '--wait', '--timeout', '120s']);
    const status = JSON.parse(await helm(['status', release, '-n', ns.name, '-o', 'json'])) as { info: { status: string }; version: number };
    expect(status.info.status).toBe('deployed');
    expect(status.version).toBe(2);

    const crd = JSON.parse(await kubectl(['get', 'crd', 'arcdeployments.arcops.dev', '-o', 'json'])) as {
      metadata: { labels?: Record<string, string> };
      spec: { versions: { schema: { openAPIV3Schema: { description: string } } }[] };
    };
    const source = parseAll(readFileSync(join(repoRoot, 'crds/arcops.dev_arcdeployments.yaml'), 'utf8'))[0] as unknown as typeof crd;
    expect(crd.spec.versions[0]?.schema.openAPIV3Schema.description).toBe(source.spec.versions[0]?.schema.openAPIV3Schema.description);
    expect(crd.metadata.labels?.['helm.sh/chart']).toMatch(/^arc-operator-/);

    // The cluster-scoped objects now carry the namespace; the old ones went with the old release.
    const sidecarRole = `${ns.name}-${fullname}-sidecar`;
    expect(await kubectl(['get', 'clusterrole', sidecarRole, '-o', 'name'])).toContain(sidecarRole);
    await expect(kubectl(['get', 'clusterrole', `${fullname}-sidecar`])).rejects.toThrow(/not ?found/i);
    const env = JSON.parse(await kubectl(['-n', ns.name, 'get', 'deployment', fullname, '-o', 'jsonpath={.spec.template.spec.containers[0].env}'])) as { name: string; value?: string }[];
    expect(env.find((e) => e.name === 'SIDECAR_CLUSTER_ROLE')?.value).toBe(sidecarRole);
    expect(env.find((e) => e.name === 'LEASE_NAME')?.value).toBe('upgrade-test-leader');
    await eventually('the upgraded operator pod Running', async () => {
      const pods = JSON.parse(await kubectl(['-n', ns.name, 'get', 'pods', '-l', `app.kubernetes.io/instance=${release}`, '-o', 'json'])) as { items: { status: { phase?: string }; metadata: { deletionTimestamp?: string } }[] };
      const live = pods.items.filter((p) => p.metadata.deletionTimestamp === undefined);
      return live.length === 1 && live[0]?.status.phase === 'Running';
    }, { timeoutMs: 90_000 });
    expect(await kubectl(['-n', ns.name, 'get', 'arcd', 'arc-basic', '-o', 'name'])).toContain('arc-basic');
  });
});

describe('two releases of the same name in two namespaces, and a release name at the limit', () => {
  const a = useTestNamespace('arc-side-a');
  const b = useTestNamespace('arc-side-b');
  const release = `same-${randomBytes(2).toString('hex')}`;
  const long = `l${randomBytes(26).toString('hex')}`; // 53 characters: Helm's limit

  afterAll(async () => {
    await helm(['uninstall', release, '-n', a.name, '--wait', '--timeout', '60s']).catch(() => undefined);
    await helm(['uninstall', release, '-n', b.name, '--wait', '--timeout', '60s']).catch(() => undefined);
    await helm(['uninstall', long, '-n', a.name, '--wait', '--timeout', '60s']).catch(() => undefined);
  });

  it('both install side by side, one team per namespace', async () => {
    for (const ns of [a.name, b.name]) {
      await helm(['install', release, CHART, '-n', ns, '--set', `watchNamespaces={${ns}}`, '--set', 'crds.install=false', '--set', 'replicaCount=1', '--wait', '--timeout', '120s']);
    }
    for (const ns of [a.name, b.name]) {
      const status = JSON.parse(await helm(['status', release, '-n', ns, '-o', 'json'])) as { info: { status: string } };
      expect(status.info.status).toBe('deployed');
      expect(await kubectl(['get', 'clusterrole', `${ns}-${release}-arc-operator-sidecar`, '-o', 'name'])).toContain('clusterrole');
    }
  });

  it(`installs a release named with ${long.length} characters`, async () => {
    expect(long).toHaveLength(53);
    await helm(['install', long, CHART, '-n', a.name, '--set', `watchNamespaces={${a.name}}`, '--set', 'crds.install=false', '--set', 'replicaCount=1', '--wait', '--timeout', '120s']);
    const services = JSON.parse(await kubectl(['-n', a.name, 'get', 'services', '-l', `app.kubernetes.io/instance=${long}`, '-o', 'json'])) as { items: { metadata: { name: string } }[] };
    expect(services.items).toHaveLength(1);
    expect(services.items[0]?.metadata.name.length).toBeLessThanOrEqual(63);
  });
});

describe('kubeconform, with schemas generated from this API server (Kubernetes and our CRD)', () => {
  let dir: string;

  beforeAll(async () => {
    // The CRD as this chart installs it (other files may have installed it already).
    await kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(repoRoot, 'crds/arcops.dev_arcdeployments.yaml')]);
    await kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd/arcdeployments.arcops.dev']);
    dir = mkdtempSync(join(tmpdir(), 'arc-kubeconform-'));
    const openapi = JSON.parse(await eventually('the ArcDeployment in /openapi/v2', async () => {
      const text = await kubectl(['get', '--raw', '/openapi/v2']);
      return text.includes('dev.arcops.v1alpha1.ArcDeployment') ? text : undefined;
    }, { timeoutMs: 30_000 })) as Record<string, unknown>;
    mkdirSync(join(dir, 'schemas'));
    writeKubeconformSchemas(openapi, join(dir, 'schemas'));
  });
  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  async function kubeconform(files: string[]): Promise<{ code: number; output: string }> {
    const args = [
      '-strict', '-summary', '-output', 'text',
      '-kubernetes-version', kubeVersion().replace(/^v/, ''),
      '-schema-location', join(dir, 'schemas', '{{ .ResourceKind }}_{{ .Group }}_{{ .ResourceAPIVersion }}.json'),
      // The Prometheus Operator's kinds: their CRDs are not part of this cluster.
      '-skip', 'PrometheusRule,ServiceMonitor,PodMonitor',
      ...files,
    ];
    try {
      const { stdout, stderr } = await run(toolPath('kubeconform'), args, { maxBuffer: 16 * 1024 * 1024 });
      return { code: 0, output: `${stdout}${stderr}` };
    } catch (err) {
      const e = err as { code?: unknown; stdout?: string; stderr?: string };
      if (e.code === 'ENOENT') throw new Error('kubeconform not found: build it with `bash hack/cluster/build.sh kubeconform`, or set KUBECONFORM', { cause: err });
      return { code: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  }

  it.each([{ name: 'default', path: '' }, ...ciFiles()])('the chart rendered with $name values is valid', async ({ path }) => {
    const { stdout } = await run(toolPath('helm'), ['template', 'arc-operator', CHART, '-n', 'arc-system', '--kube-version', kubeVersion(), '--set', 'networkPolicy.enabled=true', '--set', 'networkPolicy.workloadNamespaces={team-a}', ...(path ? ['-f', path] : [])], { maxBuffer: 32 * 1024 * 1024 });
    const file = join(dir, 'rendered.yaml');
    writeFileSync(file, stdout);
    const { code, output } = await kubeconform([file]);
    expect(output).toMatch(/Invalid: 0, Errors: 0/);
    expect(output).not.toMatch(/Valid: 0,/);
    expect(code, output).toBe(0);
  });

  it('the samples (ArcDeployments against our CRD) are valid', async () => {
    const { code, output } = await kubeconform([join(repoRoot, 'deploy/samples')]);
    expect(output).toMatch(/Invalid: 0, Errors: 0/);
    expect(code, output).toBe(0);
  });

  it('a mistyped field is refused (the check can fail)', async () => {
    const file = join(dir, 'bad.yaml');
    const sample = readFileSync(join(repoRoot, 'deploy/samples/arcdeployment-basic.yaml'), 'utf8');
    writeFileSync(file, sample.replace(/^spec:\n/m, 'spec:\n  replicaz: 2\n'));
    const { code, output } = await kubeconform([file]);
    expect(code).not.toBe(0);
    expect(output).toMatch(/replicaz/);
  });
});
