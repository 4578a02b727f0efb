import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { CoreV1Api } from '@kubernetes/client-node';
import autocannon from 'autocannon';

export const ROOT = new URL('..', import.meta.url).pathname;

export interface Child {
  proc: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts a process and waits for the line that tells its URL. Its environment is the caller's
 * plus `env`, or `env` alone with `inheritEnv: false` (a container's, where nothing of this
 * machine's environment leaks in).
 */
export async function startChild(
  args: string[],
  env: Record<string, string>,
  urlFromLine: (line: string) => string | undefined,
  { inheritEnv = true }: { inheritEnv?: boolean } = {},
): Promise<Child> {
  const proc = spawn(process.execPath, args, { cwd: ROOT, env: inheritEnv ? { ...process.env, ...env } : env, stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = createInterface({ input: proc.stdout });
  const url = await new Promise<string>((resolve, reject) => {
    rl.on('line', (line) => {
      const u = urlFromLine(line);
      if (u !== undefined) resolve(u);
    });
    proc.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
  return {
    proc,
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

export const BENCH_TOKEN = 'bench-token-0123456789';

export function startService(env: Record<string, string> = {}): Promise<Child> {
  return startChild(
    ['--conditions=arc-source', 'service/src/main.ts'],
    { PORT: '0', HOST: '127.0.0.1', ARC_API_TOKENS: BENCH_TOKEN, LOG_LEVEL: 'info', DUCKDB_THREADS: '1', ...env },
    (line) => {
      if (!line.includes('listening')) return undefined;
      const m = /"address":"([^"]+)"/.exec(line);
      return m?.[1];
    },
  );
}

/** VmRSS of a process in MB. */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

/**
 * Where a process's resident memory is, from /proc/<pid>/smaps, in MB: malloc's main heap
 * (`[heap]`), other anonymous mappings (V8's heap pages, thread stacks, malloc's per-thread
 * arenas; `arenas` counts the 64 MB-aligned ones glibc reserves for them) and file-backed pages
 * (mostly the node binary's).
 */
export function residentBreakdown(pid: number): { brkMb: number; anonMb: number; arenasMb: number; arenaCount: number; fileMb: number } {
  let brk = 0;
  let anon = 0;
  let arenas = 0;
  let arenaCount = 0;
  let file = 0;
  let current: { name: string; sizeKb: number; start: number } | undefined;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head !== null) {
      const start = Number.parseInt(head[1]!, 16);
      current = { name: head[3] ?? '', sizeKb: (Number.parseInt(head[2]!, 16) - start) / 1024, start };
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss === null || current === undefined) continue;
    const kb = Number(rss[1]);
    if (current.name === '[heap]') brk += kb;
    else if (current.name.startsWith('/')) file += kb;
    else {
      anon += kb;
      // glibc's per-thread arenas: heaps of up to 64 MB at 64 MB-aligned addresses.
      if (current.start % (64 * 1024 * 1024) === 0 && current.sizeKb <= 64 * 1024 && kb > 0) {
        arenas += kb;
        arenaCount++;
      }
    }
  }
  return { brkMb: brk / 1024, anonMb: anon / 1024, arenasMb: arenas / 1024, arenaCount, fileMb: file / 1024 };
}

/** utime + stime of a process, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export interface LoadResult {
  rps: number;
  /** CPU the server process used per request (all its threads), in microseconds. */
  cpuUsPerRequest?: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

export async function load(url: string, body: string, headers: Record<string, string>, seconds: number, connections = 32, pid?: number): Promise<LoadResult> {
  const cpu0 = pid === undefined ? 0 : cpuSeconds(pid);
  const r = await autocannon({
    url,
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...headers },
    connections,
    duration: seconds,
  });
  const cpu = pid === undefined ? 0 : cpuSeconds(pid) - cpu0;
  return { rps: r.requests.average, cpuUsPerRequest: (cpu / Math.max(1, r.requests.total)) * 1e6, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors, non2xx: r.non2xx };
}

export function fmt(n: number, digits = 1): string {
  return n.toFixed(digits);
}

/** A port on 127.0.0.1 that was free a moment ago (nothing listens on it once this returns). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `probe` until it returns true (a throw counts as "not yet"); fails after `timeoutMs`. */
export async function until(what: string, probe: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 100): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The local control plane's state folder (hack/cluster/up.sh: ARC_CLUSTER_DIR, else .cluster). */
export function clusterDir(): string {
  return process.env['ARC_CLUSTER_DIR'] ?? join(ROOT, '.cluster');
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Deletes a namespace (already being deleted is fine) and waits until it is gone; the seconds that took. */
export async function deleteNamespace(core: Pick<CoreV1Api, 'deleteNamespace' | 'listNamespace'>, name: string, intervalMs = 2000): Promise<number> {
  const t0 = performance.now();
  await core.deleteNamespace({ name }).catch(() => undefined);
  await until(`the deletion of namespace ${name}`, async () => !(await core.listNamespace()).items.some((n) => n.metadata?.name === name), 20 * 60_000, intervalMs);
  return (performance.now() - t0) / 1000;
}
