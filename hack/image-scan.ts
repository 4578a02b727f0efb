// Lists every file of built images and flags the forbidden modules among them: the check of
// hack/image-files.ts, on the real thing. Each image's file system is exported from a container
// that is created, never started (`docker create` + `docker export`), and read as a tar listing.
//
//   node hack/image-scan.ts [--patterns GLOB,GLOB] IMAGE...
// prints each image's file count and forbidden files; exits 1 if any image holds one.
import { execFileSync, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_FORBIDDEN_MODULES } from '../common/src/condition.ts';
import { compileGlobs } from '../sidecar/src/glob.ts';

export interface ImageScan {
  image: string;
  /** Absolute paths of the regular files and links in the image. */
  files: string[];
  forbidden: string[];
}

/** The paths of a tar listing (`tar -t`), made absolute, folders left out. */
export function tarPaths(listing: string): string[] {
  return listing
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.endsWith('/'))
    .map((l) => `/${l.replace(/^\.?\//, '')}`);
}

/** Every file of IMAGE, read from an exported (never started) container. */
export function imageFiles(image: string, docker = 'docker'): string[] {
  const id = execFileSync(docker, ['create', image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  try {
    const exported = spawnSync('bash', ['-o', 'pipefail', '-c', `${docker} export "$1" | tar -t`, '_', id], {
      encoding: 'utf8',
      maxBuffer: 512 * 1024 * 1024,
    });
    if (exported.status !== 0) throw new Error(`docker export ${image} | tar -t failed: ${exported.stderr}`);
    return tarPaths(exported.stdout).sort();
  } finally {
    spawnSync(docker, ['rm', '-f', id], { stdio: 'ignore' });
  }
}

export function scanImage(image: string, patterns: readonly string[] = DEFAULT_FORBIDDEN_MODULES): ImageScan {
  const forbidden = compileGlobs(patterns);
  const files = imageFiles(image);
  return { image, files, forbidden: files.filter((f) => forbidden.matches(f)) };
}

function main(argv: string[]): number {
  let patterns: readonly string[] = DEFAULT_FORBIDDEN_MODULES;
  const images: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--patterns') patterns = (argv[++i] ?? '').split(',').filter(Boolean);
    else images.push(arg);
  }
  if (images.length === 0) {
    process.stderr.write('usage: node hack/image-scan.ts [--patterns GLOB,GLOB] IMAGE...\n');
    return 2;
  }
  let bad = 0;
  for (const image of images) {
    const scan = scanImage(image, patterns);
    process.stdout.write(`${image}: ${scan.files.length} files, ${scan.forbidden.length} forbidden\n`);
    for (const f of scan.forbidden) process.stdout.write(`  FORBIDDEN ${f}\n`);
    bad += scan.forbidden.length;
  }
  return bad > 0 ? 1 : 0;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
