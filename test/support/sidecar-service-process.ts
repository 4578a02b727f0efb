// The real query service in a child process (node service/src/main.ts), for sidecar tests
// that need a separate process: stopping it for real, loading an extra module into it, or
// finding it through /proc.
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_TOKEN } from './service.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface ServiceProcess {
  url: string;
  port: number;
  token: string;
  pid: number;
  child: ChildProcess;
  /** SIGTERM, then SIGKILL after 5 s; resolves when the process is gone. */
  stop(): Promise<void>;
}

export interface ServiceProcessOptions {
  env?: Record<string, string>;
  /** Extra node flags before the entry point (e.g. `--require /tmp/x.cjs`). */
  nodeArgs?: string[];
  cwd?: string;
  startTimeoutMs?: number;
}

export function startServiceProcess(options: ServiceProcessOptions = {}): Promise<ServiceProcess> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--conditions=arc-source', join(repoRoot, 'service/src/main.ts')], {
    cwd: options.cwd ?? repoRoot,
    env: {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? '',
      TMPDIR: process.env['TMPDIR'] ?? '/tmp',
      ARC_API_TOKENS: TEST_TOKEN,
      DUCKDB_THREADS: '1',
      LOG_LEVEL: 'info',
      SHUTDOWN_GRACE_SECONDS: '1',
      ...options.env,
      PORT: '0',
      HOST: '127.0.0.1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolvePromise, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`the service process did not start within ${options.startTimeoutMs ?? 30_000} ms:\n${out.slice(-2000)}`));
    }, options.startTimeoutMs ?? 30_000);
    const onData = (chunk: Buffer): void => {
      out += chunk.toString('utf8');
      for (const line of out.split('\n')) {
        if (!line.includes('arc query service listening')) continue;
        const address = (JSON.parse(line) as { address: string }).address;
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        child.stderr?.resume();
        resolvePromise({ url: address, port: Number(new URL(address).port), token: TEST_TOKEN, pid: child.pid!, child, stop });
        return;
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the service process exited (${code}) before listening:\n${out.slice(-2000)}`));
    });
  });
}
