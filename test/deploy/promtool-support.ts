// promtool (built by hack/cluster/build.sh promtool, cached like the control plane): runs its rule
// checker and rule tester on the PrometheusRule the chart renders, and its metrics linter.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { toolPath } from '../../hack/sync-manifests.ts';
import { find, parseAll, renderChart } from './chart-support.ts';

export interface RunResult {
  code: number;
  output: string;
}

/** Runs promtool; resolves with its exit code and output (stdout + stderr), whatever the code. */
export function promtool(args: string[], stdin?: string): Promise<RunResult> {
  const bin = toolPath('promtool');
  return new Promise((resolve, reject) => {
    const child = execFile(bin, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = (err as { code?: unknown } | null)?.code;
      if (code === 'ENOENT') {
        reject(new Error(`promtool not found (${bin}): build it with \`bash hack/cluster/build.sh promtool\`, or set PROMTOOL`));
        return;
      }
      resolve({ code: typeof code === 'number' ? code : 0, output: `${stdout}${stderr}` });
    });
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

export interface RuleGroup {
  name: string;
  rules: { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }[];
}

/** The rule groups of the PrometheusRule the chart renders with the monitoring ci/ values and `extra` args. */
export async function renderedRuleGroups(extra: string[] = []): Promise<RuleGroup[]> {
  const objects = parseAll(await renderChart([], ['--set', 'prometheusRule.enabled=true', '--set', 'prometheusRule.alertLabels.team=data-platform', ...extra]));
  const [rule] = find(objects, 'PrometheusRule');
  if (rule === undefined) throw new Error('the chart rendered no PrometheusRule');
  return (rule as unknown as { spec: { groups: RuleGroup[] } }).spec.groups;
}

/** A folder with files in it, removed by the returned function. */
export function tempFiles(files: Record<string, unknown>): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'arc-promtool-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), typeof content === 'string' ? content : stringify(content));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
