// Cluster-tier helpers for the install paths: a kubeconfig made of a ServiceAccount's token (what
// the operator would get in its pod), and the operator run as a local process with the env its
// Deployment declares.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { kubeconfigPath } from '../cluster/namespace.ts';
import { kubectl, repoRoot } from '../operator/cluster-helpers.ts';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}

/** A kubeconfig file that authenticates with a fresh token of `namespace/serviceAccount`. */
export async function serviceAccountKubeconfig(namespace: string, serviceAccount: string): Promise<{ path: string; kc: KubeConfig; cleanup: () => void }> {
  const token = (await kubectl(['-n', namespace, 'create', 'token', serviceAccount, '--duration=1h'])).trim();
  const admin = new KubeConfig();
  admin.loadFromFile(kubeconfigPath());
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error('the admin kubeconfig has no current cluster');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: serviceAccount, token }],
    contexts: [{ name: 'sa', cluster: cluster.name, user: serviceAccount, namespace }],
    currentContext: 'sa',
  });
  const dir = mkdtempSync(join(tmpdir(), 'arc-sa-kubeconfig-'));
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, kc.exportConfig(), { mode: 0o600 });
  return { path, kc, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** kubectl as the ServiceAccount of `kubeconfig`; resolves with stdout or rejects with stderr. */
export function kubectlAs(kubeconfig: string, args: string[]): Promise<string> {
  const bin = join(kubeconfigPath(), '..', 'bin', 'kubectl');
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['--kubeconfig', kubeconfig, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(err || `kubectl exited with ${code}`))));
  });
}

/** The operator container's env of a Deployment in the cluster. */
export async function deploymentEnv(namespace: string, name: string): Promise<EnvVar[]> {
  const dep = JSON.parse(await kubectl(['-n', namespace, 'get', 'deployment', name, '-o', 'json'])) as {
    spec: { template: { spec: { containers: { name: string; env?: EnvVar[] }[] } } };
  };
  const container = dep.spec.template.spec.containers.find((c) => c.name === 'operator');
  if (!container) throw new Error(`deployment ${namespace}/${name} has no container named operator`);
  return container.env ?? [];
}

export interface LocalOperator {
  readonly output: () => string;
  stop(): Promise<number | null>;
}

/**
 * Runs `node --conditions=arc-source operator/src/main.ts` with the env a pod of the Deployment
 * would get (downward API fields filled in as the kubelet would, but the pod's UID), the ServiceAccount's kubeconfig,
 * metrics on loopback, and `overrides` on top.
 */
export function startLocalOperator(env: EnvVar[], pod: { name: string; namespace: string }, kubeconfig: string, overrides: Record<string, string> = {}): LocalOperator {
  const vars: Record<string, string> = {};
  for (const e of env) {
    const field = e.valueFrom?.fieldRef?.fieldPath;
    if (field === 'metadata.name') vars[e.name] = pod.name;
    else if (field === 'metadata.namespace') vars[e.name] = pod.namespace;
    // No pod exists for a local process, so no UID: the operator's Lease then has no owner (one
    // naming a pod that does not exist would have the garbage collector delete the Lease).
    else if (field === 'metadata.uid') continue;
    else if (e.value !== undefined) vars[e.name] = e.value;
    else throw new Error(`env ${e.name}: only values and metadata fieldRefs are expected`);
  }
  const child: ChildProcess = spawn(process.execPath, ['--conditions=arc-source', 'operator/src/main.ts'], {
    cwd: repoRoot,
    env: { PATH: process.env['PATH'] ?? '', HOME: tmpdir(), ...vars, KUBECONFIG: kubeconfig, METRICS_HOST: '127.0.0.1', METRICS_PORT: '0', ...overrides },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (c: Buffer): void => {
    output += c.toString();
    if (output.length > 400_000) output = output.slice(-200_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
