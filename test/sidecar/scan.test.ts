import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_FORBIDDEN_MODULES } from '@arcops/common';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseScanRoot, type ScanRoot } from '../../sidecar/src/config.ts';
import { compileGlobs } from '../../sidecar/src/glob.ts';
import { findByListeningPort } from '../../sidecar/src/proc.ts';
import { Scanner } from '../../sidecar/src/scan.ts';

const base = mkdtempSync(join(tmpdir(), 'arc-sidecar-scan-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let n = 0;

function tree(files: Record<string, string>): string {
  const root = join(base, `t${++n}`);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  mkdirSync(root, { recursive: true });
  return root;
}

/** A parsed `proc:` SCAN_ROOTS entry (fails the test if the entry is refused). */
function procRoot(spec: string): ScanRoot {
  const root = parseScanRoot(spec, '/');
  if (typeof root === 'string') throw new Error(root);
  return root;
}

function scanner(roots: Array<string | ScanRoot>, extra: Partial<ConstructorParameters<typeof Scanner>[0]> = {}): Scanner {
  return new Scanner({
    roots: roots.map((r) => (typeof r === 'string' ? { kind: 'dir' as const, path: r, spec: r } : r)),
    globs: compileGlobs(DEFAULT_FORBIDDEN_MODULES),
    maxDepth: 16,
    maxEntries: 20_000,
    servicePort: 8000,
    ...extra,
  });
}

/** Every path under `dir` with its mtime: proof that a scan changed nothing. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = statSync(p, { throwIfNoEntry: false });
      out.push(`${p} ${st?.mtimeMs ?? 'link'}`);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

describe('file scan', () => {
  it("finds the incident's files and their compiled twins, and nothing else", async () => {
    const root = tree({
      'api/duckdb_pool.py': '',
      'api/duckdb_pool_simple.py': '',
      'api/__pycache__/duckdb_pool_simple.cpython-311.pyc': '',
      'api/__pycache__/duckdb_pool.cpython-311.pyc': '',
      'dist/index.js': '',
      'dist/duckdb_pool_simple.js': '',
      'node_modules/x/index.js': '',
    });
    const r = await scanner([root]).scan();
    expect([...r.hits].sort()).toEqual(
      ['api/__pycache__/duckdb_pool_simple.cpython-311.pyc', 'api/duckdb_pool_simple.py', 'dist/duckdb_pool_simple.js'].map((p) => `${root}/${p}`),
    );
    expect(r).toMatchObject({ complete: true, roots: 1, errors: [] });
    expect(r.entries).toBe(12);
  });

  it('sees a file dropped or removed between two scans (the folder cache notices)', async () => {
    const root = tree({ 'dist/index.js': '', 'dist/deep/a/b/c.js': '' });
    // Folders untouched for a while, so the scanner trusts (caches) their listings.
    const past = new Date(Date.now() - 60_000);
    for (const d of ['', 'dist', 'dist/deep', 'dist/deep/a', 'dist/deep/a/b']) utimesSync(join(root, d), past, past);
    const s = scanner([root]);
    expect((await s.scan()).hits).toEqual([]);
    expect((await s.scan()).hits).toEqual([]);
    writeFileSync(join(root, 'dist/deep/a/b/duckdb_pool_simple.js'), '');
    expect((await s.scan()).hits).toEqual([`${root}/dist/deep/a/b/duckdb_pool_simple.js`]);
    rmSync(join(root, 'dist/deep/a/b/duckdb_pool_simple.js'));
    expect((await s.scan()).hits).toEqual([]);
  });

  it('never writes: the tree is byte-for-byte and time-for-time the same after scanning', async () => {
    const root = tree({ 'a/b/c.js': 'x', 'a/duckdb_pool_simple.js': 'y' });
    const before = snapshot(root);
    const s = scanner([root]);
    await s.scan();
    await s.scan();
    expect(snapshot(root)).toEqual(before);
  });

  it('does not follow symlinks, so a symlink loop cannot trap it', async () => {
    const root = tree({ 'app/index.js': '' });
    symlinkSync(root, join(root, 'app/loop'));
    symlinkSync('.', join(root, 'app/self'));
    symlinkSync(join(root, 'app'), join(root, 'app/up'));
    const r = await scanner([root]).scan();
    expect(r.complete).toBe(true);
    expect(r.entries).toBe(5); // app, index.js and the three links (seen, not entered)
  });

  it('reports a forbidden name even when it is a symlink (without following it)', async () => {
    const root = tree({ 'dist/real.js': '' });
    symlinkSync(join(root, 'dist/real.js'), join(root, 'dist/duckdb_pool_simple.js'));
    expect((await scanner([root]).scan()).hits).toEqual([`${root}/dist/duckdb_pool_simple.js`]);
  });

  it('stops at SCAN_MAX_ENTRIES and SCAN_MAX_DEPTH on a huge tree and says the scan is incomplete', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`wide/f${i}.js`] = '';
    files['deep/1/2/3/4/5/6/7/8/9/duckdb_pool_simple.js'] = '';
    const root = tree(files);
    const byEntries = await scanner([root], { maxEntries: 100 }).scan();
    expect(byEntries.complete).toBe(false);
    expect(byEntries.entries).toBe(100);
    expect(byEntries.errors).toContain('stopped after SCAN_MAX_ENTRIES=100 entries');

    const byDepth = await scanner([root], { maxDepth: 4 }).scan();
    expect(byDepth.complete).toBe(false);
    expect(byDepth.hits).toEqual([]);
    expect(byDepth.errors).toContain('folders deeper than SCAN_MAX_DEPTH=4 were not scanned');
    expect((await scanner([root], { maxDepth: 16 }).scan()).hits).toHaveLength(1);
  });

  it('reports a missing root as a problem without failing the other roots', async () => {
    const good = tree({ 'dist/duckdb_pool_simple.js': '' });
    const r = await scanner([join(base, 'nope'), good]).scan();
    expect(r.hits).toEqual([`${good}/dist/duckdb_pool_simple.js`]);
    expect(r.roots).toBe(1);
    expect(r.complete).toBe(false);
    expect(r.errors).toEqual([`${join(base, 'nope')}: ENOENT`]);
  });
});

describe('file scan through /proc (how it reaches the service container in a pod)', () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
  });

  /** A process that lives in `cwd` and optionally listens on a port (a stand-in for the service's files). */
  async function processIn(cwd: string, marker: string, listen: boolean): Promise<{ pid: number; port: number }> {
    const code = listen
      ? `const s=require('net').createServer().listen(0,'127.0.0.1',()=>console.log(s.address().port));`
      : `console.log(0);setInterval(()=>{},1000);`;
    const child = spawn(process.execPath, ['-e', code, marker], { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    const port = await new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    return { pid: child.pid!, port };
  }

  it('proc:<command-line part> scans that process\'s working folder via /proc/<pid>/cwd', async () => {
    const root = tree({ 'api/duckdb_pool_simple.py': '', 'api/app.py': '' });
    const marker = `arc-scan-marker-${process.pid}-${Date.now()}`;
    const { pid } = await processIn(root, marker, false);
    const r = await scanner([procRoot(`proc:${marker}`)]).scan();
    expect(r.errors).toEqual([]);
    expect(r.resolved).toEqual([`proc:${marker} -> /proc/${pid}/cwd (${root})`]);
    expect(r.hits).toEqual([`pid ${pid}:${root}/api/duckdb_pool_simple.py`]);
  });

  it('proc:<match>:/folder scans a folder inside the process root (/proc/<pid>/root/folder)', async () => {
    const root = tree({ 'dist/duckdb_pool_simple.js': '' });
    const marker = `arc-scan-root-${process.pid}-${Date.now()}`;
    const { pid } = await processIn(base, marker, false);
    const r = await scanner([procRoot(`proc:${marker}:${root}`)]).scan();
    expect(r.hits).toEqual([`pid ${pid}:${root}/dist/duckdb_pool_simple.js`]);
  });

  it('proc:auto finds the process listening on the service port', async () => {
    const root = tree({ 'dist/duckdb_pool_simple.js': '' });
    const { pid, port } = await processIn(root, 'arc-auto', true);
    expect(await findByListeningPort(port)).toBe(pid);
    const r = await scanner([procRoot('proc:auto')], { servicePort: port }).scan();
    expect(r.hits).toEqual([`pid ${pid}:${root}/dist/duckdb_pool_simple.js`]);
  });

  it('explains what to fix when no process is found', async () => {
    const r = await scanner([procRoot('proc:auto')], { servicePort: 1 }).scan();
    expect(r.complete).toBe(false);
    expect(r.errors[0]).toMatch(/no readable process listens on port 1 .*shareProcessNamespace/);
    const r2 = await scanner([procRoot('proc:no-such-process-xyz-123')]).scan();
    expect(r2.errors).toEqual(['proc:no-such-process-xyz-123: no process whose command line contains "no-such-process-xyz-123"']);
  });

  it('follows the service across a restart (a new pid)', async () => {
    const root = tree({ 'ok.js': '' });
    const marker = `arc-scan-restart-${process.pid}-${Date.now()}`;
    const first = await processIn(root, marker, false);
    const s = scanner([procRoot(`proc:${marker}`)]);
    expect((await s.scan()).resolved[0]).toContain(`/proc/${first.pid}/cwd`);
    children.shift()?.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    const dirty = tree({ 'duckdb_pool_simple.js': '' });
    const second = await processIn(dirty, marker, false);
    const r = await s.scan();
    expect(r.resolved[0]).toContain(`/proc/${second.pid}/cwd`);
    expect(r.hits).toEqual([`pid ${second.pid}:${dirty}/duckdb_pool_simple.js`]);
  });
});
