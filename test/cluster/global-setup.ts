// vitest globalSetup for the cluster tier: brings the local control plane up once per run
// (hack/cluster/up.sh, which builds missing binaries first), or reuses one that is already up,
// and provides the admin kubeconfig's path to the tests (`inject('kubeconfig')`).
// If this run started the cluster, teardown stops it again unless ARC_CLUSTER_KEEP=1.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  interface ProvidedContext {
    kubeconfig: string;
  }
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const stateDir = resolve(process.env['ARC_CLUSTER_DIR'] ?? join(repoRoot, '.cluster'));
const components = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'];

let startedHere = false;

/** True when every component's pid file names a live process running that component. */
function clusterProcessesRunning(): boolean {
  return components.every((component) => {
    const pidFile = join(stateDir, 'pids', `${component}.pid`);
    if (!existsSync(pidFile)) return false;
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return false;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return cmdline[0] === join(stateDir, 'bin', component);
    } catch {
      return false;
    }
  });
}

interface ScriptResult {
  code: number | null;
  output: string;
}

/** Runs a bash script of hack/cluster, streaming its output to stderr and keeping a copy. */
function runScript(script: string, args: string[] = []): Promise<ScriptResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('bash', [join(repoRoot, 'hack/cluster', script), ...args], {
      cwd: repoRoot,
      env: { ...process.env, ARC_CLUSTER_DIR: stateDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (chunk: Buffer): void => {
      process.stderr.write(chunk);
      output += chunk.toString('utf8');
      if (output.length > 200_000) output = output.slice(-100_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, output }));
  });
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export async function setup(project: TestProject): Promise<void> {
  const kubeconfig = join(stateDir, 'kubeconfig');
  const reusing = clusterProcessesRunning();
  const t0 = Date.now();
  const result = await runScript('up.sh');
  if (result.code !== 0) {
    const goMissing = /Go is not on PATH|Go .* is too old/.test(result.output);
    const hint = goMissing
      ? 'The cluster tier needs Go >= 1.26 on PATH to build kube-apiserver, etcd and kwok from their Go modules ' +
        '(see docs/cluster.md). Install Go, then run the tests again.'
      : `See the component logs in ${join(stateDir, 'logs')} and docs/cluster.md ("Debugging").`;
    throw new Error(
      `The local Kubernetes control plane did not come up (hack/cluster/up.sh exited with ${result.code}). ${hint}\n` +
        `Last lines of its output:\n${tail(result.output, 40)}`,
    );
  }
  if (!existsSync(kubeconfig)) {
    throw new Error(`hack/cluster/up.sh succeeded but wrote no kubeconfig at ${kubeconfig}`);
  }
  startedHere = !reusing;
  process.stderr.write(
    `[cluster tier] ${reusing ? 'reusing the running' : 'started a'} control plane in ${((Date.now() - t0) / 1000).toFixed(1)}s; ` +
      `kubeconfig ${kubeconfig}\n`,
  );
  project.provide('kubeconfig', kubeconfig);
}

export async function teardown(): Promise<void> {
  if (!startedHere) return;
  if (process.env['ARC_CLUSTER_KEEP'] === '1') {
    process.stderr.write(`[cluster tier] ARC_CLUSTER_KEEP=1: leaving the control plane running (npm run cluster:down stops it)\n`);
    return;
  }
  const result = await runScript('down.sh');
  if (result.code !== 0) {
    throw new Error(`hack/cluster/down.sh exited with ${result.code}:\n${tail(result.output, 20)}`);
  }
}
