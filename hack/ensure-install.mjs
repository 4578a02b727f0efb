// Runs before `npm start` and `npm test` with whatever node the machine has: installs the
// workspace (including the Node 24 binary from the `node` package) when it is missing or
// older than package-lock.json, then checks that npm scripts will run on Node >= 24.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nodeBin = join(root, 'node_modules', '.bin', 'node');
const marker = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');

const stale = !existsSync(nodeBin) || !existsSync(marker) || statSync(lock).mtimeMs > statSync(marker).mtimeMs;
if (stale) {
  process.stdout.write('arc-operator: installing dependencies (npm ci)...\n');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write('arc-operator: npm ci failed; see the output above.\n');
    process.exit(r.status ?? 1);
  }
}
const version = execFileSync(nodeBin, ['--version'], { encoding: 'utf8' }).trim();
const major = Number(/^v(\d+)/.exec(version)?.[1] ?? 0);
if (major < 24) {
  process.stderr.write(`arc-operator: node_modules/.bin/node is ${version}; Node.js >= 24 is required. Run: npm ci\n`);
  process.exit(1);
}
