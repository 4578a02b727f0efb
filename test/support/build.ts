// Builds a workspace package (`tsc -b`) for tests that run its compiled output, one build at a
// time: test files run in parallel worker processes, and one of them must not start
// `node dist/main.js` while another rewrites dist/. The lock is a directory holding the pid of
// its owner; a lock whose owner is gone (a run killed mid-build) is taken over.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../..', import.meta.url).pathname;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function withLock<T>(dir: string, timeoutMs: number, fn: () => T): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner = NaN;
      try {
        owner = Number(readFileSync(join(dir, 'pid'), 'utf8'));
      } catch {
        /* being created or removed right now */
      }
      if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for the build lock ${dir} (held by pid ${owner})`, { cause: err });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    return fn();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `tsc -b <project>`, serialized across test workers; throws with tsc's output on failure. */
export async function buildPackage(project: string): Promise<void> {
  await withLock(join(ROOT, `.build-lock-${project}`), 120_000, () => {
    const built = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', project], { cwd: ROOT, encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`tsc -b ${project} failed:\n${built.stdout}${built.stderr}`);
  });
}
