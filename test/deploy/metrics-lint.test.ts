// `promtool check metrics` on the real /metrics of the three deployables, each run as its own
// process (node <part>/src/main.ts) on loopback: the query service, a sidecar probing it, and an
// operator whose API server does not answer (up but failing, which its metrics must say).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APPLY_KINDS, APPLY_RESULTS, READY_CHECKS, REMEDIATION_REASONS, REMEDIATION_RESULTS } from '../../operator/src/metrics.ts';
import { eventually } from '../support/service.ts';
import { startServiceProcess, type ServiceProcess } from '../support/sidecar-service-process.ts';
import { REPO_ROOT } from './chart-support.ts';
import { promtool } from './promtool-support.ts';

/** A TCP port that was free a moment ago (bound, then released). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

interface Proc {
  child: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

function startPart(entry: string, env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['--conditions=arc-source', join(REPO_ROOT, entry)], {
    cwd: REPO_ROOT,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', TMPDIR: process.env['TMPDIR'] ?? '/tmp', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return res.text();
}

/** The value of one sample line (`name{labels} value`), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function lint(text: string): Promise<{ code: number; output: string }> {
  return promtool(['check', 'metrics'], text);
}

describe('promtool check metrics on the real /metrics of each deployable', () => {
  let service: ServiceProcess;
  let sidecar: Proc;
  let operator: Proc;
  let sidecarPort: number;
  let operatorPort: number;
  let dir: string;

  beforeAll(async () => {
    service = await startServiceProcess({ env: { DUCKDB_POOL_SIZE: '2' } });
    sidecarPort = await freePort();
    sidecar = startPart('sidecar/src/main.ts', {
      ARC_SERVICE_URL: service.url,
      ARC_API_TOKEN: service.token,
      SIDECAR_HOST: '127.0.0.1',
      SIDECAR_PORT: String(sidecarPort),
      PROBE_INTERVAL_SECONDS: '1',
    });
    // An API server that does not answer: a loopback port nobody listens on.
    dir = mkdtempSync(join(tmpdir(), 'arc-metrics-lint-'));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{name: c, cluster: {server: "https://127.0.0.1:${await freePort()}", insecure-skip-tls-verify: true}}]`,
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'current-context: x',
        '',
      ].join('\n'),
    );
    operatorPort = await freePort();
    operator = startPart('operator/src/main.ts', {
      KUBECONFIG: kubeconfig,
      LEADER_ELECTION: 'off',
      METRICS_HOST: '127.0.0.1',
      METRICS_PORT: String(operatorPort),
      POD_NAME: 'arc-operator-test',
    });
  });

  afterAll(async () => {
    await Promise.all([sidecar?.stop(), operator?.stop(), service?.stop()]);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('the query service', async () => {
    const text = await scrape(`${service.url}/metrics`);
    expect(text).toContain('arc_service_pool_size 2');
    expect(text).toContain('arc_service_query_duration_seconds_count{outcome="error"} 0');
    const { code, output } = await lint(text);
    expect(output).toBe('');
    expect(code).toBe(0);
  });

  it('the sidecar (after its first verdict)', async () => {
    let text = '';
    await eventually(
      async () => {
        text = await fetch(`http://127.0.0.1:${sidecarPort}/metrics`).then((r) => r.text(), () => '');
        return sample(text, 'arc_sidecar_healthy') === 1;
      },
      30_000,
      `a healthy verdict from the sidecar; its output:\n${sidecar.output().slice(-2000)}`,
    );
    expect(sample(text, 'arc_sidecar_transitions_total{from="PoolExhausted",to="Healthy"}')).toBe(0);
    expect(sample(text, 'arc_sidecar_condition_writes_total{outcome="failure"}')).toBe(0);
    const { code, output } = await lint(text);
    expect(output).toBe('');
    expect(code).toBe(0);
  });

  it('the operator, up but without an API server: lint-clean, every known series at 0, and not ready', async () => {
    let text = '';
    await eventually(
      async () => {
        text = await fetch(`http://127.0.0.1:${operatorPort}/metrics`).then((r) => r.text(), () => '');
        return sample(text, 'arc_operator_ready{check="leader"}') === 1;
      },
      30_000,
      `the operator's /metrics; its output:\n${operator.output().slice(-2000)}`,
    );
    const { code, output } = await lint(text);
    expect(output).toBe('');
    expect(code).toBe(0);
    // It acts (no leader election) but cannot work: the metric says what /readyz says.
    await eventually(async () => sample(await scrape(`http://127.0.0.1:${operatorPort}/metrics`), 'arc_operator_ready{check="api_reachable"}') === 0, 30_000, 'api_reachable 0');
    text = await scrape(`http://127.0.0.1:${operatorPort}/metrics`);
    expect(sample(text, 'arc_operator_ready{check="caches_synced"}')).toBe(0);
    expect((await fetch(`http://127.0.0.1:${operatorPort}/readyz`)).status).toBe(503);
    expect(READY_CHECKS.map((check) => sample(text, `arc_operator_ready{check="${check}"}`))).toEqual([0, 1, 0]);
    for (const reason of REMEDIATION_REASONS) {
      for (const result of REMEDIATION_RESULTS) expect(sample(text, `arc_operator_remediations_total{reason="${reason}",result="${result}"}`), `${reason}/${result}`).toBe(0);
    }
    for (const kind of APPLY_KINDS) for (const result of APPLY_RESULTS) expect(sample(text, `arc_operator_apply_total{kind="${kind}",result="${result}"}`)).toBe(0);
    expect(sample(text, 'arc_operator_reconcile_total{result="success"}')).toBe(0);
  });
});
