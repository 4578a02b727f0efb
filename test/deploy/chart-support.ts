// Helpers for the chart and manifest tests: helm and kubectl from the local build cache (the same
// lookup as hack/sync-manifests.ts), rendering with the chart's ci/ option files, YAML parsing.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadAllYaml } from '@kubernetes/client-node';
import { CHART_DIR, REPO_ROOT, helmFailure, kubeVersion, toolPath } from '../../hack/sync-manifests.ts';

const run = promisify(execFile);

export { REPO_ROOT, CHART_DIR };
export const CHART = join(REPO_ROOT, CHART_DIR);
export const GOLDEN_DIR = join(REPO_ROOT, 'test/deploy/golden');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** The option files under charts/arc-operator/ci/, by name without `-values.yaml`. */
export function ciFiles(): { name: string; path: string }[] {
  return readdirSync(join(CHART, 'ci'))
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => ({ name: f.replace(/(-values)?\.yaml$/, ''), path: join(CHART, 'ci', f) }));
}

/** Runs helm; resolves with stdout and stderr, rejects with both on a non-zero exit. */
export async function helm(args: string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(toolPath('helm'), args, { maxBuffer: 32 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: unknown };
    if (e.code === 'ENOENT') throw new Error(helmFailure(toolPath('helm'), err), { cause: err });
    throw new Error(`helm ${args.join(' ')} failed:\n${e.stderr ?? ''}${e.stdout ?? ''}`, { cause: err });
  }
}

export async function kubectlLocal(args: string[]): Promise<string> {
  const { stdout } = await run(toolPath('kubectl'), args, { maxBuffer: 32 * 1024 * 1024 });
  return stdout;
}

/** `helm template` of the chart as release `arc-operator` in namespace `arc-system`. */
export async function renderChart(valueFiles: string[] = [], extra: string[] = []): Promise<string> {
  const { stdout } = await helm([
    'template', 'arc-operator', CHART, '--namespace', 'arc-system', '--kube-version', kubeVersion(),
    ...valueFiles.flatMap((f) => ['-f', f]), ...extra,
  ]);
  return stdout;
}

export function parseAll(text: string): K8sObject[] {
  return (loadAllYaml(text) as unknown[]).filter((d): d is K8sObject => d !== null && typeof d === 'object');
}

export function find(objects: K8sObject[], kind: string, name?: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
}
