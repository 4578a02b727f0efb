/**
 * A bounded, read-only walk of the service's file tree looking for forbidden files.
 *
 * - Never writes, never opens files: only readdir and stat.
 * - Never follows symbolic links (a link is matched by its name but not descended), and skips
 *   any folder already seen (device + inode), so neither symlink nor bind-mount loops can trap it.
 * - Stops at `maxDepth` and after `maxEntries` entries per scan, and says so (`complete: false`).
 * - Rescans cheaply: a folder whose mtime/ctime/inode did not change since the last scan is not
 *   read again (adding, removing or renaming an entry changes its folder's mtime).
 * - Uses synchronous stat/readdir (a fraction of the CPU of their async twins, which matters at
 *   one scan every few seconds) and yields to the event loop every few dozen folders.
 *
 * Roots: a local folder, or `proc:` roots that reach another process's files through /proc
 * (see proc.ts): `proc:auto` (the process listening on the service's port) or
 * `proc:<part of its command line>`, scanning its working folder (`/proc/<pid>/cwd`), or
 * `proc:<match>:/folder` scanning `/proc/<pid>/root/folder`.
 */
import { lstatSync, readdirSync, type Stats, statSync } from 'node:fs';
import { readlink } from 'node:fs/promises';
import type { ScanOutcome } from './checks.ts';
import type { ScanRoot } from './config.ts';
import type { GlobSet } from './glob.ts';
import { findByCommandLine, findByListeningPort, startTime } from './proc.ts';

export interface ScannerOptions {
  roots: readonly ScanRoot[];
  globs: GlobSet;
  maxDepth: number;
  maxEntries: number;
  /** The service's port, for `proc:auto`. */
  servicePort: number;
  procRoot?: string;
  selfPid?: number;
  now?: () => number;
}

export interface ScanReport extends ScanOutcome {
  readonly durationMs: number;
  /** Where each root led this time (e.g. `proc:auto -> /proc/123/cwd (/app)`). */
  readonly resolved: readonly string[];
}

interface CachedDir {
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
  /** Entries in the folder (for the entry budget). */
  readonly count: number;
  readonly dirs: readonly string[];
  /** Non-folder entries whose name could match a pattern (the rest never can). */
  readonly candidates: readonly string[];
}

interface Walk {
  left: number;
  entries: number;
  truncated: boolean;
  depthLimited: boolean;
  unreadable: string[];
  hits: string[];
  visited: Set<string>;
  cache: Map<string, CachedDir>;
}

const MAX_HITS = 50;
const RACY_MS = 2000;
const EMPTY: CachedDir = { mtimeMs: 0, ctimeMs: 0, ino: 0, count: 0, dirs: [], candidates: [] };
/** Folders read between two yields to the event loop. */
const FOLDERS_PER_SLICE = 64;

export class Scanner {
  private readonly options: ScannerOptions;
  private cache = new Map<string, CachedDir>();
  private readonly pids = new Map<string, { pid: number; start: string | undefined }>();

  constructor(options: ScannerOptions) {
    this.options = options;
  }

  get enabled(): boolean {
    return this.options.roots.length > 0;
  }

  async scan(): Promise<ScanReport> {
    const now = this.options.now ?? (() => performance.now());
    const t0 = now();
    const walk: Walk = {
      left: this.options.maxEntries,
      entries: 0,
      truncated: false,
      depthLimited: false,
      unreadable: [],
      hits: [],
      visited: new Set(),
      cache: new Map(),
    };
    const errors: string[] = [];
    const resolved: string[] = [];
    let roots = 0;
    for (const root of this.options.roots) {
      const where = await this.resolve(root);
      if (typeof where === 'string') {
        errors.push(where);
        continue;
      }
      resolved.push(where.note);
      const problem = await this.walkRoot(where.dir, where.label, walk);
      if (problem === undefined) roots++;
      else errors.push(problem);
    }
    this.cache = walk.cache;
    if (walk.truncated) errors.push(`stopped after SCAN_MAX_ENTRIES=${this.options.maxEntries} entries`);
    if (walk.depthLimited) errors.push(`folders deeper than SCAN_MAX_DEPTH=${this.options.maxDepth} were not scanned`);
    if (walk.unreadable.length > 0) {
      errors.push(`${walk.unreadable.length} folder(s) could not be read, e.g. ${walk.unreadable[0]}`);
    }
    return {
      hits: walk.hits,
      complete: errors.length === 0,
      entries: walk.entries,
      errors,
      roots,
      resolved,
      durationMs: now() - t0,
    };
  }

  /** Where a root leads now: a folder to walk and a label for hits, or why it cannot be scanned. */
  private async resolve(root: ScanRoot): Promise<{ dir: string; label: string; note: string } | string> {
    if (root.kind === 'dir') return { dir: root.path, label: root.path, note: root.path };
    const procRoot = this.options.procRoot ?? '/proc';
    const pid = await this.pidFor(root);
    if (pid === undefined) {
      return root.match === 'auto'
        ? `${root.spec}: no readable process listens on port ${this.options.servicePort} ` +
            '(in a pod: shareProcessNamespace must be true and the sidecar must run as the service\'s user)'
        : `${root.spec}: no process whose command line contains ${JSON.stringify(root.match)}`;
    }
    if (root.path === undefined) {
      const dir = `${procRoot}/${pid}/cwd`;
      const seen = await readlink(dir).catch(() => '?');
      return { dir, label: `pid ${pid}:${seen.replace(/\/$/, '')}`, note: `${root.spec} -> ${dir} (${seen})` };
    }
    const dir = `${procRoot}/${pid}/root${root.path}`;
    return { dir, label: `pid ${pid}:${root.path.replace(/\/$/, '')}`, note: `${root.spec} -> ${dir}` };
  }

  /** The root's process, remembered until it exits or its pid is reused. */
  private async pidFor(root: Extract<ScanRoot, { kind: 'proc' }>): Promise<number | undefined> {
    const procRoot = this.options.procRoot ?? '/proc';
    const known = this.pids.get(root.spec);
    if (known !== undefined && (await startTime(known.pid, procRoot)) === known.start && known.start !== undefined) return known.pid;
    const opts = { procRoot, selfPid: this.options.selfPid ?? process.pid };
    const pid =
      root.match === 'auto' ? await findByListeningPort(this.options.servicePort, opts) : await findByCommandLine(root.match, opts);
    if (pid === undefined) {
      this.pids.delete(root.spec);
      return undefined;
    }
    this.pids.set(root.spec, { pid, start: await startTime(pid, procRoot) });
    return pid;
  }

  /** Walks one root; returns a problem when the root itself cannot be read. */
  private async walkRoot(rootDir: string, label: string, w: Walk): Promise<string | undefined> {
    const { globs, maxDepth } = this.options;
    const stack: Array<{ dir: string; rel: string; depth: number }> = [{ dir: rootDir, rel: '', depth: 0 }];
    let folders = 0;
    while (stack.length > 0 && !w.truncated) {
      if (++folders % FOLDERS_PER_SLICE === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const { dir, rel, depth } = stack.pop()!;
      const listing = this.list(dir, rel === '', w);
      if (typeof listing === 'string') {
        if (rel === '') return `${label}: ${listing}`;
        if (w.unreadable.length < 10) w.unreadable.push(`${label}/${rel}: ${listing}`);
        continue;
      }
      if (listing.count > w.left) {
        w.entries += w.left;
        w.left = 0;
        w.truncated = true;
        break;
      }
      w.left -= listing.count;
      w.entries += listing.count;
      for (const name of listing.candidates) {
        const childRel = rel === '' ? name : `${rel}/${name}`;
        if (globs.matches(childRel) && w.hits.length < MAX_HITS) w.hits.push(`${label}/${childRel}`);
      }
      for (const name of listing.dirs) {
        if (depth + 1 < maxDepth) stack.push({ dir: `${dir}/${name}`, rel: rel === '' ? name : `${rel}/${name}`, depth: depth + 1 });
        else w.depthLimited = true;
      }
    }
    return undefined;
  }

  /** A folder's listing, from the cache when the folder did not change; a string on failure. */
  private list(dir: string, isRoot: boolean, w: Walk): CachedDir | string {
    let st: Stats;
    try {
      // The root may be a link (/proc/<pid>/cwd): follow it; below the root, links are never followed.
      st = isRoot ? statSync(dir) : lstatSync(dir);
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
    if (!st.isDirectory()) return 'not a folder';
    const id = `${st.dev}:${st.ino}`;
    if (w.visited.has(id)) return EMPTY;
    w.visited.add(id);
    const cached = this.cache.get(dir);
    if (cached !== undefined && cached.mtimeMs === st.mtimeMs && cached.ctimeMs === st.ctimeMs && cached.ino === st.ino) {
      w.cache.set(dir, cached);
      return cached;
    }
    try {
      const dirents = readdirSync(dir, { withFileTypes: true });
      const listing: CachedDir = {
        mtimeMs: st.mtimeMs,
        ctimeMs: st.ctimeMs,
        ino: st.ino,
        count: dirents.length,
        // Links are never followed: a link to a folder is listed as a name, not entered.
        dirs: dirents.filter((d) => d.isDirectory()).map((d) => d.name),
        candidates: dirents.filter((d) => !d.isDirectory() && this.options.globs.mayMatchName(d.name)).map((d) => d.name),
      };
      // A folder changed in the last moments may change again within the same timestamp
      // tick ("racy" as git calls it): read it again next time rather than trust its mtime.
      if (Date.now() - st.mtimeMs > RACY_MS) w.cache.set(dir, listing);
      return listing;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
  }
}
