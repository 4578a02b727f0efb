import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { SLOW_SQL } from '../support/service.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

interface Started {
  child: ChildProcess;
  url: string;
  logs: Array<Record<string, unknown>>;
  exit: Promise<number | null>;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

/** Runs `npm run service`'s command as a real process on a random loopback port. */
async function startProcess(env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, ['--conditions=arc-source', 'service/src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', DUCKDB_THREADS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  const logs: Array<Record<string, unknown>> = [];
  const rl = createInterface({ input: child.stdout });
  const url = await new Promise<string>((resolve, reject) => {
    rl.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'arc query service listening') resolve(String(entry.address));
      } catch {
        /* not a log line */
      }
    });
    void exit.then((code) => reject(new Error(`service exited with ${code} before listening`)));
  });
  return { child, url, logs, exit };
}

/** Resolves once the service reports a query running (a connection in use), the moment to send SIGTERM. */
async function queryRunning(url: string, token: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const m = (await (await fetch(`${url}/api/v1/metrics`, { headers: { authorization: `Bearer ${token}` } })).json()) as { active_connections: number };
    if (m.active_connections >= 1) return;
    if (Date.now() > deadline) throw new Error('no query running after 20 s');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function runQuery(url: string, token: string, sql: string) {
  const res = await fetch(`${url}/api/v1/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ sql }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('the service as a process (npm run service)', () => {
  it('refuses bad configuration at boot with one message listing every problem', async () => {
    const child = spawn(process.execPath, ['--conditions=arc-source', 'service/src/main.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, DUCKDB_POOL_SIZE: 'five', PORT: '99999', DUCKDB_POOL_TIMEOUT: '-1', UV_THREADPOOL_SIZE: '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(78);
    expect(stderr).toMatch(/DUCKDB_POOL_SIZE must be an integer/);
    expect(stderr).toMatch(/PORT must be between 0 and 65535/);
    expect(stderr).toMatch(/DUCKDB_POOL_TIMEOUT must be a number of seconds/);
    expect(stderr).toMatch(/UV_THREADPOOL_SIZE=2 is too small/);
  });

  it.each([
    ['a data dir that does not exist', { ARC_DATA_DIR: '/nonexistent-arc-data' }, /ARC_DATA_DIR \/nonexistent-arc-data does not exist/],
    ['a data dir that is a file', { ARC_DATA_DIR: '/etc/hostname' }, /ARC_DATA_DIR \/etc\/hostname is not a folder/],
    ['a database in a missing folder', { DUCKDB_PATH: '/nonexistent-arc/x.duckdb' }, /DUCKDB_PATH .* the folder \/nonexistent-arc does not exist/],
    ['a database path that is a folder', { DUCKDB_PATH: '/etc' }, /DUCKDB_PATH \/etc is not a file/],
    ['a database file that is not DuckDB', { DUCKDB_PATH: '/etc/hostname' }, /DUCKDB_PATH \/etc\/hostname cannot be opened: .*not a valid DuckDB database/],
    ['a temp dir under a file', { DUCKDB_TEMP_DIR: '/etc/hostname/x' }, /DUCKDB_TEMP_DIR \/etc\/hostname\/x cannot be a folder/],
    ['a temp dir that cannot be made (/proc)', { DUCKDB_TEMP_DIR: '/proc/arc-nope' }, /DUCKDB_TEMP_DIR \/proc\/arc-nope cannot be made/],
    ['tokens that are only separators', { ARC_API_TOKENS: ' , , ' }, /ARC_API_TOKENS is set but holds no token/],
  ])('exits 78 with one clear line for %s', async (_what, env: Record<string, string>, message) => {
    const child = spawn(process.execPath, ['--conditions=arc-source', 'service/src/main.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(timer);
    expect(code, stderr).toBe(78);
    expect(stderr.trimEnd().split('\n'), stderr).toHaveLength(1);
    expect(stderr).toMatch(message);
  });

  it('keeps a token that starts with #: comments exist only in a token file', async () => {
    const s = await startProcess({ ARC_API_TOKENS: '#abc12345' });
    expect(s.logs.filter((l) => typeof l.token === 'string')).toHaveLength(0);
    expect((await runQuery(s.url, '#abc12345', 'SELECT 1 AS one')).status).toBe(200);
    s.child.kill('SIGTERM');
    expect(await s.exit).toBe(0);
  });

  it('never runs open: without tokens it makes one, logs it once, and requires it', async () => {
    const s = await startProcess({});
    const tokenLogs = s.logs.filter((l) => typeof l.token === 'string');
    expect(tokenLogs).toHaveLength(1);
    const token = String(tokenLogs[0]!.token);
    expect((await runQuery(s.url, token, 'SELECT 1 AS one')).body).toMatchObject({ success: true, data: [[1]] });
    expect((await runQuery(s.url, 'not-the-token', 'SELECT 1')).status).toBe(401);
    s.child.kill('SIGTERM');
    expect(await s.exit).toBe(0);
  });

  it('reports what really runs: the pool implementation, its modules and a threadpool sized to the pool', async () => {
    const s = await startProcess({ ARC_API_TOKENS: 'process-token-1', DUCKDB_POOL_SIZE: '6' });
    const rt = (await (await fetch(`${s.url}/api/v1/runtime`, { headers: { authorization: 'Bearer process-token-1' } })).json()) as {
      pool_implementation: string;
      threadpool_size: number;
      loaded_modules: string[];
    };
    expect(rt.pool_implementation).toBe('DuckDBConnectionPool');
    expect(rt.threadpool_size).toBe(10);
    expect(rt.loaded_modules.some((m) => m.endsWith('service/src/pool.ts'))).toBe(true);
    expect(rt.loaded_modules.some((m) => /node_modules\/fastify\//.test(m))).toBe(true);
    expect(rt.loaded_modules.some((m) => m.includes('duckdb_pool_simple'))).toBe(false);
    s.child.kill('SIGTERM');
    expect(await s.exit).toBe(0);
  });

  it('on SIGTERM finishes the query in flight, then exits 0 and stops listening', async () => {
    const s = await startProcess({ ARC_API_TOKENS: 'process-token-1' });
    const inflight = runQuery(s.url, 'process-token-1', 'SELECT sum(hash(i)) AS h FROM range(150000000) t(i)');
    await queryRunning(s.url, 'process-token-1');
    s.child.kill('SIGTERM');
    const r = await inflight;
    expect(r.status).toBe(200);
    expect(r.body.success).toBe(true);
    expect(await s.exit).toBe(0);
    await expect(fetch(`${s.url}/health`)).rejects.toThrow();
  });

  it('after the grace period interrupts what still runs, answers 503, and exits 0', async () => {
    const s = await startProcess({ ARC_API_TOKENS: 'process-token-1', SHUTDOWN_GRACE_SECONDS: '0.5' });
    const inflight = runQuery(s.url, 'process-token-1', SLOW_SQL);
    await queryRunning(s.url, 'process-token-1');
    s.child.kill('SIGTERM');
    const r = await inflight;
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ success: false, error: 'The service is shutting down' });
    expect(await s.exit).toBe(0);
    expect(s.logs.some((l) => l.msg === 'shutdown grace period over: interrupting running queries')).toBe(true);
  });
});
