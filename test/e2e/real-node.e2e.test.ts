// The whole loop on real containers, on this machine: test/e2e/e2e.sh --real-node builds our
// images offline, brings up the local control plane with a real kubelet, installs the chart and
// drives exhaustion -> eviction -> replacement, the image fault and the clean-up (see its --help).
// Where the real node cannot run (not root, no overlayfs, neither apt-get nor containerd, no Go),
// the test is NOT RUN and says why, in its name and on the console; under CI (CI=true), where the
// machine is meant to run it, it fails instead.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../hack/sync-manifests.ts';

const SCRIPT = join(REPO_ROOT, 'test/e2e/e2e.sh');

function onPath(tool: string): boolean {
  return spawnSync('bash', ['-c', 'command -v "$1"', '_', tool], { stdio: 'ignore' }).status === 0;
}

/** Why the real node cannot run here, or undefined when it can. */
function realNodeUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return 'not root: the real node starts containerd, a kubelet, a bridge and iptables rules';
  const filesystems = existsSync('/proc/filesystems') ? readFileSync('/proc/filesystems', 'utf8') : '';
  if (!/\toverlay$/m.test(filesystems)) return 'the kernel offers no overlayfs (containerd and dockerd need it)';
  if (!onPath('apt-get') && !(onPath('containerd') && onPath('dockerd'))) return 'neither apt-get nor containerd and dockerd to run containers with';
  if (!onPath('go')) return 'no Go on PATH to build the kubelet (docs/cluster.md)';
  return undefined;
}

const missing = realNodeUnavailable();
const inCI = process.env['CI'] === 'true';
if (missing !== undefined) {
  console.warn(`real-node e2e NOT RUN: ${missing}.${inCI ? ' CI=true: this fails the run.' : ''}`);
}

describe('test/e2e/e2e.sh --real-node', () => {
  if (missing !== undefined && inCI) {
    it('runs on the CI machine', () => {
      expect.fail(`the real-node e2e cannot run on this CI machine: ${missing}`);
    });
  }

  it.skipIf(missing !== undefined)(
    missing === undefined
      ? 'chart on a real kubelet: Available through the readiness gate, exhausted pod replaced, image fault reported, everything removed'
      : `real-node e2e NOT RUN: ${missing}`,
    () => {
      const r = spawnSync('bash', [SCRIPT, '--real-node'], { stdio: 'inherit', timeout: 50 * 60_000 });
      expect(r.error).toBeUndefined();
      expect(r.status).toBe(0);
    },
    55 * 60_000,
  );
});
