// The compiled sidecar started with the image's own command (the Dockerfile's sidecar
// ENTRYPOINT: node flags that keep it small, among them --lite-mode, which also turns
// WebAssembly and with it the global fetch off). It must still probe a real service, judge it
// Healthy and serve its API; anything wasm-based in the sidecar would fail here.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageCommand } from '../../bench/sidecar.ts';
import { buildPackage } from '../support/build.ts';
import { type RunningService, startService } from '../support/service.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
let svc: RunningService;

beforeAll(async () => {
  await buildPackage('sidecar');
  svc = await startService({ DUCKDB_POOL_SIZE: '2' });
}, 120_000);
afterAll(async () => svc?.close());

describe('the sidecar run as the image runs it', () => {
  it('uses the lite-mode flags, probes the service and says Healthy', async () => {
    const command = imageCommand();
    expect(command.args).toContain('--lite-mode');
    const child = spawn(process.execPath, command.args, {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        ...command.env,
        ARC_SERVICE_URL: svc.url,
        ARC_API_TOKEN: svc.token,
        SIDECAR_HOST: '127.0.0.1',
        SIDECAR_PORT: '0',
        PROBE_INTERVAL_SECONDS: '0.25',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).on('line', (line) => {
          const m = /"address":"([^"]+)".*"msg":"arc sidecar listening"/.exec(line);
          if (m !== null) resolve(m[1]!);
        });
        child.once('exit', (code) => reject(new Error(`the sidecar exited with ${code}: ${stderr}`)));
      });
      const end = Date.now() + 15_000;
      let status: { healthy?: boolean; reason?: string; settled?: boolean } = {};
      while (Date.now() < end && status.settled !== true) {
        await new Promise((r) => setTimeout(r, 200));
        status = (await (await fetch(`${url}/status`)).json()) as typeof status;
      }
      expect(status).toMatchObject({ healthy: true, reason: 'Healthy', settled: true });
      expect(await (await fetch(`${url}/metrics`)).text()).toContain('arc_sidecar_process_resident_memory_bytes');
    } finally {
      child.kill('SIGTERM');
    }
    expect(stderr).toBe('');
  }, 30_000);
});
