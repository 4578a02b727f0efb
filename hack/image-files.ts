// Lists exactly what each image of the root Dockerfile would contain, without Docker:
//   1. the build context: the working tree minus .dockerignore;
//   2. the build stage: the context's COPY sources copied into a temporary folder and compiled
//      there with a fresh `tsc -b tsconfig.build.json` (the real tree's dist/ is never used);
//   3. each target: its COPY --from=build sources out of that folder, plus the production
//      dependencies its *-deps stage installs (`npm ls --omit=dev --workspace`);
// then flags every file matching the forbidden-module patterns (common/src/condition.ts).
//
//   node hack/image-files.ts [--list] [service|sidecar|operator ...]
// prints each image's forbidden files (and with --list every file) and exits 1 if any is found.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_FORBIDDEN_MODULES } from '../common/src/condition.ts';
import { compileGlobs, globToRegExp } from '../sidecar/src/glob.ts';

export const TARGETS = ['service', 'sidecar', 'operator'] as const;
export type Target = (typeof TARGETS)[number];

interface Copy {
  from: string | undefined;
  sources: string[];
  /** Absolute destination (resolved against WORKDIR). */
  dest: string;
  /** Destination as written (a trailing slash means a folder). */
  rawDest: string;
}

interface Stage {
  name: string;
  base: string;
  workdir: string;
  copies: Copy[];
}

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function instructions(dockerfile: string): string[] {
  const out: string[] = [];
  let current = '';
  for (const raw of dockerfile.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.trimEnd();
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim() !== '') out.push(current.trim());
    current = '';
  }
  return out;
}

/** The stages of a Dockerfile with their WORKDIR and COPY instructions (what images contain). */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  for (const ins of instructions(text)) {
    const [op = '', ...rest] = ins.split(/\s+/);
    const upper = op.toUpperCase();
    if (upper === 'FROM') {
      const asAt = rest.findIndex((w) => w.toUpperCase() === 'AS');
      const base = rest.filter((w) => !w.startsWith('--'))[0] ?? '';
      const parent = stages.find((s) => s.name === base);
      stages.push({
        name: asAt >= 0 ? (rest[asAt + 1] ?? '') : `stage${stages.length}`,
        base,
        workdir: parent?.workdir ?? '/',
        copies: parent ? [...parent.copies] : [],
      });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) continue;
    if (upper === 'WORKDIR') stage.workdir = resolve(stage.workdir, rest[0] ?? '/');
    if (upper === 'COPY' || upper === 'ADD') {
      const from = rest.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const args = rest.filter((w) => !w.startsWith('--'));
      const dest = resolve(stage.workdir, args.at(-1) ?? '.');
      stage.copies.push({ from, sources: args.slice(0, -1), dest, rawDest: args.at(-1) ?? '.' });
    }
  }
  return stages;
}

/** A matcher for .dockerignore (Go filepath.Match patterns with `**`, `!` exceptions). */
export function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = (negate ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, '');
      return { negate, re: globToRegExp(`/${pattern}`) };
    });
  // A path is excluded when it, or a folder above it, matches the last applicable rule.
  return (path) => {
    const parts = path.split('/');
    let excluded = false;
    for (const rule of rules) {
      for (let i = 1; i <= parts.length; i++) {
        if (rule.re.test(parts.slice(0, i).join('/'))) {
          excluded = !rule.negate;
          break;
        }
      }
    }
    return excluded;
  };
}

function walk(root: string, dir = root, out: string[] = [], skip: (rel: string) => boolean = () => false): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    const rel = relative(root, full).split(sep).join('/');
    if (skip(rel)) continue;
    if (entry.isDirectory()) walk(root, full, out, skip);
    else out.push(rel);
  }
  return out;
}

/** Files of the build context (relative paths). */
export function contextFiles(root: string): string[] {
  const ignorePath = join(root, '.dockerignore');
  const ignored = existsSync(ignorePath) ? dockerignore(readFileSync(ignorePath, 'utf8')) : () => false;
  return walk(root, root, [], ignored).sort();
}

/**
 * Where COPY puts each of `files` (paths relative to the copy's source root) that `sources`
 * select: a folder's contents go into the destination folder; a file goes into it by its name
 * (or becomes it, when the destination has no trailing slash and is the only source).
 */
export function copyTargets(sources: string[], destination: string, destIsDir: boolean, files: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of sources) {
    const source = raw.replace(/^\.\/?/, '').replace(/\/+$/, '');
    for (const file of files) {
      if (source === '' || file.startsWith(`${source}/`)) {
        out.set(file, join(destination, source === '' ? file : file.slice(source.length + 1)));
      } else if (file === source) {
        out.set(file, destIsDir ? join(destination, file.split('/').at(-1) ?? file) : destination);
      }
    }
  }
  return out;
}

function copyIsIntoDir(copy: Copy): boolean {
  return copy.sources.length > 1 || copy.rawDest.endsWith('/') || copy.rawDest === '.';
}

/**
 * Recreates the build stage in a temporary folder: the context files its COPY instructions take,
 * then `tsc -b tsconfig.build.json` (node_modules linked from the tree, for types only).
 * Returns the folder (standing for the stage's WORKDIR) and a cleanup function.
 */
export function simulateBuild(root: string, stages: Stage[]): { dir: string; cleanup: () => void } {
  const build = stages.find((s) => s.name === 'build');
  if (!build) throw new Error('the Dockerfile has no stage named build');
  const dir = mkdtempSync(join(tmpdir(), 'arc-image-build-'));
  const files = contextFiles(root);
  for (const copy of build.copies.filter((c) => c.from === undefined)) {
    for (const [file, dest] of copyTargets(copy.sources, copy.dest, copyIsIntoDir(copy), files)) {
      const target = join(dir, relative(build.workdir, dest));
      mkdirSync(dirname(target), { recursive: true });
      cpSync(join(root, file), target);
    }
  }
  symlinkSync(realpathSync(join(root, 'node_modules')), join(dir, 'node_modules'));
  try {
    execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b', 'tsconfig.build.json'], { cwd: dir, stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const out = (err as { stdout?: Buffer }).stdout?.toString() ?? '';
    throw new Error(`tsc -b tsconfig.build.json failed in the simulated build stage:\n${out}`, { cause: err });
  }
  rmSync(join(dir, 'node_modules'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

interface LockEntry {
  link?: boolean;
  resolved?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

/**
 * The package-lock.json paths (node_modules/...) that `npm ci --omit=dev --workspace <ws>`
 * installs: the workspace's dependencies and theirs, resolved the way Node does (nearest
 * node_modules first), workspace links followed but not listed.
 */
export function productionDependencyPaths(lockText: string, workspace: string): string[] {
  const packages = (JSON.parse(lockText) as { packages: Record<string, LockEntry> }).packages;
  const wsPath = Object.entries(packages).find(([path, e]) => !path.includes('node_modules') && (e as { name?: string }).name === workspace)?.[0];
  if (wsPath === undefined) throw new Error(`package-lock.json has no workspace ${workspace}`);
  const found = new Set<string>();
  const resolveFrom = (from: string, name: string): string | undefined => {
    let base = from;
    for (;;) {
      const candidate = base === '' ? `node_modules/${name}` : `${base}/node_modules/${name}`;
      if (packages[candidate] !== undefined) return candidate;
      if (base === '') return undefined;
      const at = base.lastIndexOf('/node_modules/');
      base = at >= 0 ? base.slice(0, at) : '';
    }
  };
  const visit = (path: string, entry: LockEntry): void => {
    const wanted: [string, boolean][] = [
      ...Object.keys(entry.dependencies ?? {}).map((n): [string, boolean] => [n, false]),
      ...Object.keys(entry.optionalDependencies ?? {}).map((n): [string, boolean] => [n, true]),
      ...Object.keys(entry.peerDependencies ?? {}).map((n): [string, boolean] => [n, entry.peerDependenciesMeta?.[n]?.optional === true]),
    ];
    for (const [name, optional] of wanted) {
      const at = resolveFrom(path, name);
      if (at === undefined) {
        if (optional) continue;
        throw new Error(`package-lock.json: ${name}, needed by ${path || 'the root'}, is not in the lock`);
      }
      if (found.has(at)) continue;
      found.add(at);
      const dep = packages[at] as LockEntry;
      if (dep.link && dep.resolved !== undefined) visit(dep.resolved, packages[dep.resolved] ?? {});
      else visit(at, dep);
    }
  };
  visit(wsPath, packages[wsPath] as LockEntry);
  return [...found].filter((p) => !(packages[p] as LockEntry).link).sort();
}

/** Files (relative to the repository) of a workspace's production dependencies, as installed. */
export function productionDependencyFiles(root: string, workspace: string): string[] {
  const files: string[] = [];
  for (const pkg of productionDependencyPaths(readFileSync(join(root, 'package-lock.json'), 'utf8'), workspace)) {
    const dir = join(root, pkg);
    if (!existsSync(dir)) continue; // an optional dependency for another platform
    const nested = (rel: string): boolean => rel.startsWith('node_modules/') || rel.includes('/node_modules/');
    for (const f of walk(dir, dir, [], nested)) files.push(`${pkg}/${f}`);
  }
  return files.sort();
}

export interface ImageListing {
  /** The Dockerfile stage (service, sidecar, operator, or any other stage name). */
  target: string;
  /** Absolute paths inside the image. */
  files: string[];
  forbidden: string[];
}

/** What each target image would contain, and which of its files match a forbidden pattern. */
export function listImages(root: string, targets: readonly string[] = TARGETS, forbiddenPatterns: readonly string[] = DEFAULT_FORBIDDEN_MODULES): ImageListing[] {
  const stages = parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'));
  const forbidden = compileGlobs(forbiddenPatterns);
  const { dir, cleanup } = simulateBuild(root, stages);
  try {
    const built = walk(dir).sort();
    const buildWorkdir = stages.find((s) => s.name === 'build')?.workdir ?? '/';
    return targets.map((target) => {
      const stage = stages.find((s) => s.name === target);
      if (!stage) throw new Error(`the Dockerfile has no stage named ${target}`);
      const files = new Set<string>();
      for (const copy of stage.copies) {
        if (copy.from === 'build') {
          const relSources = copy.sources.map((src) => relative(buildWorkdir, resolve(buildWorkdir, src)));
          for (const dest of copyTargets(relSources, copy.dest, copyIsIntoDir(copy), built).values()) files.add(dest);
        } else if (copy.from !== undefined && copy.from.endsWith('-deps')) {
          const deps = productionDependencyFiles(root, `@arcops/${copy.from.slice(0, -'-deps'.length)}`);
          for (const dest of copyTargets(['node_modules'], copy.dest, true, deps).values()) files.add(dest);
        } else if (copy.from === undefined) {
          for (const dest of copyTargets(copy.sources, copy.dest, copyIsIntoDir(copy), contextFiles(root)).values()) files.add(dest);
        } else {
          throw new Error(`${target}: COPY --from=${copy.from} is not understood by hack/image-files.ts`);
        }
      }
      const list = [...files].sort();
      return { target, files: list, forbidden: list.filter((f) => forbidden.matches(f)) };
    });
  } finally {
    cleanup();
  }
}

function main(argv: string[]): number {
  const showAll = argv.includes('--list');
  const wanted = argv.filter((a): a is Target => (TARGETS as readonly string[]).includes(a));
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  let bad = 0;
  for (const image of listImages(root, wanted.length > 0 ? wanted : TARGETS)) {
    process.stdout.write(`${image.target}: ${image.files.length} files, ${image.forbidden.length} forbidden\n`);
    if (showAll) for (const f of image.files) process.stdout.write(`  ${f}\n`);
    for (const f of image.forbidden) process.stdout.write(`  FORBIDDEN ${f}\n`);
    bad += image.forbidden.length;
  }
  return bad > 0 ? 1 : 0;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
