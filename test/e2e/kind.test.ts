// The kind e2e (test/e2e/kind.sh = test/e2e/e2e.sh --kind) needs a Docker engine and kind. Where
// either is missing (our machines have no kind), it is
// NOT run, and this file says so out loud: the skipped test's name and a console line both state
// it, so a green run is never mistaken for an e2e that passed. The script itself is always checked.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../hack/sync-manifests.ts';

const SCRIPT = join(REPO_ROOT, 'test/e2e/kind.sh');
const STEPS = join(REPO_ROOT, 'test/e2e/e2e.sh');

/** Why kind cannot run here (no kind CLI, no Docker engine), or undefined when it can. */
function kindUnavailable(): string | undefined {
  const kind = spawnSync('kind', ['version'], { encoding: 'utf8', timeout: 15_000 });
  if (kind.error) return `no kind CLI (${kind.error.message})`;
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 15_000 });
  if (r.error) return `docker CLI not usable (${r.error.message})`;
  if (r.status !== 0) return `no Docker engine: ${(r.stderr.trim().split('\n').at(-1) ?? '') || `docker info exited with ${r.status}`}`;
  return undefined;
}

const missing = kindUnavailable();
if (missing !== undefined) {
  console.warn(`kind e2e NOT RUN: ${missing}. Run test/e2e/kind.sh on a machine with Docker and kind; here the same steps run on the real node (test/e2e/real-node.e2e.test.ts).`);
}

describe('test/e2e/kind.sh', () => {
  it('is valid bash and uses only loopback for the port-forward', () => {
    execFileSync('bash', ['-n', SCRIPT]);
    execFileSync('bash', ['-n', STEPS]);
    expect(readFileSync(SCRIPT, 'utf8')).toMatch(/e2e\.sh" --kind/);
    const text = readFileSync(STEPS, 'utf8');
    const forwards = text.split('\n').filter((l) => /^\s*kubectl\b.*\bport-forward\b/.test(l));
    expect(forwards.length).toBeGreaterThan(0);
    for (const line of forwards) expect(line).toMatch(/--address 127\.0\.0\.1 /);
  });

  it.skipIf(missing !== undefined)(
    missing === undefined ? 'runs the kind e2e: exhausted pod evicted and replaced' : `kind e2e NOT RUN: ${missing}`,
    () => {
      const r = spawnSync('bash', [SCRIPT], { stdio: 'inherit', timeout: 40 * 60_000 });
      expect(r.status).toBe(0);
    },
    45 * 60_000,
  );
});
