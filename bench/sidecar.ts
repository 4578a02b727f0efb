// The sidecar's overhead (issue 3): its RSS and CPU while probing every 5 s, and the service's
// `SELECT 1` throughput with and without the sidecar probing it. Prints figures and ratios;
// never asserts on wall-clock. Run alone: node --conditions=arc-source bench/sidecar.ts [--quick]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { BENCH_TOKEN, type Child, cpuSeconds, fmt, freePort, load, type LoadResult, median, ROOT, startChild, startService } from './support.ts';

export interface SidecarBenchOptions {
  /** How long to sample the sidecar's RSS and CPU (default 60 s). */
  sampleSeconds?: number;
  /** Length of each throughput run, and how many with/without pairs (default 3 s x 10). */
  loadSeconds?: number;
  rounds?: number;
  /** How long to sample the sidecar in pod mode (in-cluster credentials, TLS loaded), default 20 s. */
  podModeSeconds?: number;
}

export interface ProcessFigures {
  /** Average CPU over the sampling window, in % of one core. */
  cpuPercent: number;
  /** VmRSS at the end and at its highest, in MB. */
  rssMb: number;
  rssMaxMb: number;
  /** Private anonymous memory (heap, stacks): what the sidecar itself adds, in MB. */
  rssAnonMb: number;
  /** File-backed pages (mostly the node binary's code, shared with any other node process), in MB. */
  rssFileMb: number;
  samples: number;
}

export interface Comparison {
  without: LoadResult;
  with: LoadResult;
  /** with / without, per pair. */
  ratios: number[];
  /** with / without of the averages, and the median pair (robust to one noisy round). */
  ratio: number;
  medianRatio: number;
}

export interface SidecarBench {
  entry: string;
  local: ProcessFigures;
  podMode: ProcessFigures;
  scan: { entries: number; complete: boolean; secondsPerScan: number };
  /** Probing every 5 s (the default). */
  direct: Comparison;
  /** Probing every 0.1 s: 50 times the default rate. */
  amplified: Comparison;
  /** Requests per second the sidecar sends to the service (metrics, runtime, canary). */
  probeRequestsPerSecond: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function memory(pid: number): { rss: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
}

/** Samples a process every `everyMs` for `seconds`, after a warm-up of one interval. */
export async function sample(pid: number, seconds: number, everyMs = 5000): Promise<ProcessFigures> {
  await sleep(everyMs); // start-up (module loading, JIT) is not the steady state
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  let max = 0;
  let samples = 0;
  let last = memory(pid);
  for (let elapsed = 0; elapsed < seconds * 1000; elapsed += everyMs) {
    await sleep(everyMs);
    last = memory(pid);
    max = Math.max(max, last.rss);
    samples++;
  }
  const cpuPercent = ((cpuSeconds(pid) - cpu0) / ((performance.now() - t0) / 1000)) * 100;
  return { cpuPercent, rssMb: last.rss, rssMaxMb: max, rssAnonMb: last.anon, rssFileMb: last.file, samples };
}

/**
 * The command the sidecar image runs: the Dockerfile's `sidecar` stage, its ENTRYPOINT (node and
 * its flags) and the ENV it has (its own and its parent stages'), with the script mapped from the
 * image's WORKDIR (/app/sidecar) to sidecar/ here. Flags live in that one place; the bench reads
 * them rather than copying them.
 */
export function imageCommand(dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')): { args: string[]; env: Record<string, string> } {
  const lines = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l));
  const stageOf = (name: string): { from: string; lines: string[] } | undefined => {
    const start = lines.findIndex((l) => new RegExp(`^FROM\\s+\\S+\\s+AS\\s+${name}\\s*$`, 'i').test(l));
    if (start < 0) return undefined;
    const end = lines.findIndex((l, i) => i > start && /^FROM\s/i.test(l));
    return { from: /^FROM\s+(\S+)/i.exec(lines[start]!)![1]!, lines: lines.slice(start, end < 0 ? undefined : end) };
  };
  const stage = stageOf('sidecar');
  if (stage === undefined) throw new Error('Dockerfile: no "FROM ... AS sidecar" stage');
  const chain = [stage];
  for (let parent = stageOf(stage.from); parent !== undefined; parent = stageOf(parent.from)) chain.unshift(parent);
  const env: Record<string, string> = {};
  for (const st of chain) {
    for (const l of st.lines.filter((x) => /^ENV\s/.test(x))) {
      for (const m of l.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
    }
  }
  const entry = stage.lines.find((l) => /^ENTRYPOINT\s/.test(l));
  const argv = entry === undefined ? [] : (JSON.parse(entry.replace(/^ENTRYPOINT\s+/, '')) as string[]);
  if (argv[0] !== 'node' || argv.length < 2) throw new Error(`Dockerfile: the sidecar ENTRYPOINT is not ["node", ..., "<script>"]: ${entry}`);
  return { args: [...argv.slice(1, -1), join('sidecar', argv.at(-1)!)], env };
}

/** The production command (compiled, the image's flags); the TypeScript source if it does not build. */
export function sidecarEntry(): { args: string[]; env: Record<string, string> } {
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const built = spawnSync(process.execPath, [tsc, '-b', 'sidecar'], { cwd: ROOT, stdio: 'ignore' });
  if (built.status === 0 && existsSync(join(ROOT, 'sidecar/dist/main.js'))) return imageCommand();
  console.warn('sidecar: tsc -b failed; measuring the TypeScript sources, which load the type stripper (more memory than the image)');
  return { args: ['--conditions=arc-source', 'sidecar/src/main.ts'], env: {} };
}

/**
 * The sidecar with a container's environment: the image's ENV and the settings given, nothing
 * of the caller's. What a developer's shell carries changes what is measured: NODE_OPTIONS, a
 * KUBECONFIG (pod mode would switch to the client library) or NODE_EXTRA_CA_CERTS (node:https
 * then parses that bundle at load: +0.8 MB with this machine's 140 certificates).
 */
export function startSidecar(entry: { args: string[]; env: Record<string, string> }, env: Record<string, string>): Promise<Child> {
  const container = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', HOSTNAME: 'bench-0' };
  return startChild(
    entry.args,
    { ...container, ...entry.env, LOG_LEVEL: 'info', SIDECAR_HOST: '127.0.0.1', SIDECAR_PORT: '0', ...env },
    (line) => (line.includes('arc sidecar listening') ? /"address":"([^"]+)"/.exec(line)?.[1] : undefined),
    { inheritEnv: false },
  );
}

const BODY = JSON.stringify({ sql: 'SELECT 1' });
const AUTH = { authorization: `Bearer ${BENCH_TOKEN}` };

function average(xs: LoadResult[]): LoadResult {
  return {
    rps: xs.reduce((s, x) => s + x.rps, 0) / xs.length,
    p50: xs.reduce((s, x) => s + x.p50, 0) / xs.length,
    p99: xs.reduce((s, x) => s + x.p99, 0) / xs.length,
    errors: xs.reduce((s, x) => s + x.errors, 0),
    non2xx: xs.reduce((s, x) => s + x.non2xx, 0),
  };
}

/** Alternating runs with the sidecar stopped (SIGSTOP) and running (ABBA order). */
async function compare(target: string, sidecar: Child, pairs: number, seconds: number): Promise<Comparison> {
  const without: LoadResult[] = [];
  const withIt: LoadResult[] = [];
  const runWithout = async (): Promise<void> => {
    sidecar.proc.kill('SIGSTOP');
    try {
      without.push(await load(target, BODY, AUTH, seconds));
    } finally {
      sidecar.proc.kill('SIGCONT');
    }
  };
  const runWith = async (): Promise<void> => {
    withIt.push(await load(target, BODY, AUTH, seconds));
  };
  for (let i = 0; i < pairs; i++) {
    if (i % 2 === 0) {
      await runWithout();
      await runWith();
    } else {
      await runWith();
      await runWithout();
    }
  }
  const ratios = withIt.map((w, i) => w.rps / without[i]!.rps);
  const w = average(withIt);
  const wo = average(without);
  return { without: wo, with: w, ratios, ratio: w.rps / wo.rps, medianRatio: median(ratios) };
}

/** Requests the sidecar has sent to the service so far (metrics, runtime, canary). */
function probeRequests(metricsText: string): number {
  return [...metricsText.matchAll(/^arc_sidecar_probe_duration_seconds_count\{endpoint="\w+",outcome="\w+"\} (\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);
}

function metricValue(text: string, name: string): number {
  return Number(new RegExp(`^${name} ([\\d.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);
}

export async function benchSidecar(options: SidecarBenchOptions = {}): Promise<SidecarBench> {
  const { sampleSeconds = 60, loadSeconds = 3, rounds = 10, podModeSeconds = 20 } = options;
  const entry = sidecarEntry();
  const service = await startService({ DUCKDB_POOL_SIZE: '5' });
  const tmp = mkdtempSync(join(tmpdir(), 'arc-bench-sidecar-'));
  const base = {
    ARC_SERVICE_URL: service.url,
    ARC_API_TOKEN: BENCH_TOKEN,
    PROBE_INTERVAL_SECONDS: '5',
    // The pod's way in: the process listening on the service port, scanned through /proc.
    SCAN_ROOTS: 'proc:auto',
  };
  const children: Child[] = [service];
  try {
    // 1. Local mode: probing, scanning, serving; no pod condition.
    const sidecar = await startSidecar(entry, base);
    children.push(sidecar);
    const probesBefore = probeRequests(await (await fetch(`${sidecar.url}/metrics`)).text());
    const t0 = performance.now();
    const local = await sample(sidecar.proc.pid!, sampleSeconds);
    const metrics = await (await fetch(`${sidecar.url}/metrics`)).text();
    const probeRequestsPerSecond = (probeRequests(metrics) - probesBefore) / ((performance.now() - t0) / 1000);
    const status = (await (await fetch(`${sidecar.url}/status`)).json()) as { checks: { forbiddenModule: { scan?: { entries: number; complete: boolean } } } };
    const scans = metricValue(metrics, 'arc_sidecar_scan_duration_seconds_count');
    const scanSeconds = metricValue(metrics, 'arc_sidecar_scan_duration_seconds_sum');

    // 2. Throughput of the service with the sidecar stopped (SIGSTOP) and probing, in short
    //    pairs whose order alternates, so drift in the machine's load hits both sides alike.
    const target = `${service.url}/api/v1/query`;
    await load(target, BODY, AUTH, 2); // warm-up
    const direct = await compare(target, sidecar, rounds, loadSeconds);
    await sidecar.stop();

    // 2b. The same with the sidecar probing 50 times as often (every 0.1 s): an effect too small
    //     to see at 5 s rises above the noise here, and bounds the real one (divide by 50).
    const busy = await startSidecar(entry, { ...base, PROBE_INTERVAL_SECONDS: '0.1', SCAN_INTERVAL_SECONDS: '5' });
    children.push(busy);
    const amplified = await compare(target, busy, Math.max(2, Math.round(rounds / 2)), loadSeconds);
    await busy.stop();

    // 3. Pod mode as in a pod: POD_NAME/POD_NAMESPACE and in-cluster credentials (a
    //    ServiceAccount folder), so the condition writer loads node:https/TLS and retries
    //    against an API server that does not answer (loopback, closed port).
    const saDir = join(tmp, 'serviceaccount');
    mkdirSync(saDir);
    writeFileSync(join(saDir, 'token'), 'bench');
    writeFileSync(join(saDir, 'ca.crt'), rootCertificates[0]!); // any well-formed CA certificate
    const podSidecar = await startSidecar(entry, {
      ...base,
      POD_NAME: 'bench-0',
      POD_NAMESPACE: 'bench',
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: String(await freePort()),
      SERVICE_ACCOUNT_DIR: saDir,
    });
    children.push(podSidecar);
    const podMode = await sample(podSidecar.proc.pid!, podModeSeconds);

    return {
      entry: entry.args.join(' '),
      local,
      podMode,
      scan: {
        entries: status.checks.forbiddenModule.scan?.entries ?? 0,
        complete: status.checks.forbiddenModule.scan?.complete ?? false,
        secondsPerScan: scans > 0 ? scanSeconds / scans : 0,
      },
      direct,
      amplified,
      probeRequestsPerSecond,
    };
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** One process's figures on a line. */
export function processLine(name: string, f: ProcessFigures): string {
  return (
    `  ${name.padEnd(34)} CPU ${fmt(f.cpuPercent, 2).padStart(5)} % of a core   RSS ${fmt(f.rssMb, 1)} MB (max ${fmt(f.rssMaxMb, 1)}; ` +
    `private ${fmt(f.rssAnonMb, 1)} MB + file-backed ${fmt(f.rssFileMb, 1)} MB)`
  );
}

export function printSidecar(r: SidecarBench): void {
  const proc = processLine;
  console.log(`Sidecar overhead (probe every 5 s, SCAN_ROOTS=proc:auto; ${r.entry})`);
  console.log(proc('local (no pod condition)', r.local));
  console.log(proc('pod mode (in-cluster credentials)', r.podMode));
  console.log(`  targets: RSS < 60 MB, CPU < 1 % of a core`);
  console.log(`  file scan: ${r.scan.entries} entries${r.scan.complete ? '' : ' (incomplete)'}, ${fmt(r.scan.secondsPerScan * 1000, 1)} ms per scan`);
  console.log(`  requests the sidecar sends to the service: ${fmt(r.probeRequestsPerSecond, 2)} per second`);
  const line = (name: string, x: LoadResult): string =>
    `  ${name.padEnd(34)} ${fmt(x.rps, 0).padStart(8)} req/s   p50 ${fmt(x.p50, 0)} ms   p99 ${fmt(x.p99, 0)} ms   errors ${x.errors} non-2xx ${x.non2xx}`;
  const ratios = (c: Comparison): string =>
    `${fmt(c.ratio, 3)} of the averages, ${fmt(c.medianRatio, 3)} median pair (pairs: ${c.ratios.map((x) => fmt(x, 3)).join(', ')})`;
  console.log('SELECT 1 throughput of the service (pool of 5, 32 connections), runs alternating');
  console.log(line('sidecar stopped (SIGSTOP)', r.direct.without));
  console.log(line('sidecar probing every 5 s', r.direct.with));
  console.log(`  ratio with / without: ${ratios(r.direct)}; target within 2 %`);
  console.log(line('sidecar stopped (SIGSTOP)', r.amplified.without));
  console.log(line('sidecar probing every 0.1 s (50x)', r.amplified.with));
  console.log(`  ratio with / without at 50x: ${ratios(r.amplified)}`);
  const bound = Math.max(0, 1 - r.amplified.medianRatio) / 50;
  console.log(`  => cost at the default 5 s interval, from the 50x run: about ${fmt(bound * 100, 2)} % of throughput`);
}

if (import.meta.main) {
  const quick = process.argv.includes('--quick');
  printSidecar(await benchSidecar(quick ? { sampleSeconds: 20, loadSeconds: 2, rounds: 4, podModeSeconds: 10 } : {}));
}
