import { POOL_HEALTH_REASONS } from '@arcops/common';
import type * as Prom from 'prom-client';
import { CHECK_NAMES, type CheckResults, type Verdict } from './checks.ts';

// prom-client's index also loads its Pushgateway (node:https, so TLS and zlib) and its default
// metrics (which load @opentelemetry/api): about 18 MB of RSS the sidecar has no use for. Only
// the four classes it uses are loaded (prom-client is pinned; the sidecar tests read /metrics).
const load = process.getBuiltinModule('node:module').createRequire(import.meta.url);
const Registry = load('prom-client/lib/registry') as typeof Prom.Registry;
const Counter = load('prom-client/lib/counter') as typeof Prom.Counter;
const Gauge = load('prom-client/lib/gauge') as typeof Prom.Gauge;
const Histogram = load('prom-client/lib/histogram') as typeof Prom.Histogram;
type Registry = Prom.Registry;

export const PROBE_ENDPOINTS = ['metrics', 'runtime', 'canary'] as const;
export type ProbeEndpoint = (typeof PROBE_ENDPOINTS)[number];

/** The sidecar's Prometheus metrics, on a Registry of its own (never the global one). */
export interface SidecarMetrics {
  readonly registry: Registry;
  observeProbe(endpoint: ProbeEndpoint, seconds: number, ok: boolean): void;
  observeScan(seconds: number, entries: number, complete: boolean): void;
  observeChecks(checks: CheckResults): void;
  observeVerdict(verdict: Verdict | undefined): void;
  observeTransition(from: string, to: string): void;
  observeConditionWrite(ok: boolean): void;
}

/**
 * A few of prom-client's default process metrics, under their usual names prefixed
 * `arc_sidecar_`, read when scraped: CPU, resident memory, start time and the V8 heap.
 */
function processMetrics(registers: Registry[]): void {
  let cpu = process.cpuUsage();
  // Registered first, so collected before the other two are read (in registration order).
  new Counter({
    name: 'arc_sidecar_process_cpu_user_seconds_total',
    help: 'Total user CPU time spent in seconds.',
    registers,
    collect() {
      const now = process.cpuUsage();
      const user = (now.user - cpu.user) / 1e6;
      const sys = (now.system - cpu.system) / 1e6;
      cpu = now;
      this.inc(user);
      system.inc(sys);
      total.inc(user + sys);
    },
  });
  const system = new Counter({ name: 'arc_sidecar_process_cpu_system_seconds_total', help: 'Total system CPU time spent in seconds.', registers });
  const total = new Counter({ name: 'arc_sidecar_process_cpu_seconds_total', help: 'Total user and system CPU time spent in seconds.', registers });
  new Gauge({
    name: 'arc_sidecar_process_resident_memory_bytes',
    help: 'Resident memory size in bytes.',
    registers,
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  new Gauge({ name: 'arc_sidecar_process_start_time_seconds', help: 'Start time of the process since unix epoch in seconds.', registers }).set(
    Math.round(Date.now() / 1000 - process.uptime()),
  );
  new Gauge({
    name: 'arc_sidecar_nodejs_heap_size_total_bytes',
    help: 'Process heap size from Node.js in bytes.',
    registers,
    collect() {
      this.set(process.memoryUsage().heapTotal);
    },
  });
  new Gauge({
    name: 'arc_sidecar_nodejs_heap_size_used_bytes',
    help: 'Process heap size used from Node.js in bytes.',
    registers,
    collect() {
      this.set(process.memoryUsage().heapUsed);
    },
  });
}

export function createMetrics(options: { registry?: Registry; processMetrics?: boolean } = {}): SidecarMetrics {
  const registry = options.registry ?? new Registry();
  const registers = [registry];
  if (options.processMetrics === true) processMetrics(registers);
  const probeDuration = new Histogram({
    name: 'arc_sidecar_probe_duration_seconds',
    help: 'Time the service took to answer a probe request (metrics, runtime, canary SELECT 1)',
    labelNames: ['endpoint', 'outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const scanDuration = new Histogram({
    name: 'arc_sidecar_scan_duration_seconds',
    help: "Time one scan of the service's file tree took",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const scanEntries = new Gauge({ name: 'arc_sidecar_scan_entries', help: 'Entries visited by the last scan', registers });
  const scanComplete = new Gauge({
    name: 'arc_sidecar_scan_complete',
    help: '1 when the last scan covered every root fully, 0 when a limit or an unreadable root cut it short',
    registers,
  });
  const checkFailing = new Gauge({
    name: 'arc_sidecar_check_failing',
    help: 'Per check: 1 failing, 0 otherwise (see arc_sidecar_check_status for pending/unknown)',
    labelNames: ['check'],
    registers,
  });
  const checkStatus = new Gauge({
    name: 'arc_sidecar_check_status',
    help: 'Per check and status (ok, pending, failing, unknown): 1 for the current status',
    labelNames: ['check', 'status'],
    registers,
  });
  const healthy = new Gauge({ name: 'arc_sidecar_healthy', help: '1 when the verdict is Healthy, 0 otherwise (also before the first verdict)', registers });
  const verdictReason = new Gauge({
    name: 'arc_sidecar_verdict',
    help: 'The current verdict: 1 for its reason, 0 for the others',
    labelNames: ['reason'],
    registers,
  });
  const transitions = new Counter({
    name: 'arc_sidecar_transitions_total',
    help: 'Verdict changes, by previous and new reason (from="None" for the first verdict)',
    labelNames: ['from', 'to'],
    registers,
  });
  const conditionWrites = new Counter({
    name: 'arc_sidecar_condition_writes_total',
    help: 'Writes of the pod condition arcops.dev/PoolHealthy, by outcome',
    labelNames: ['outcome'],
    registers,
  });
  // Every series whose labels are known in advance starts at 0: the first event is an increase.
  for (const endpoint of PROBE_ENDPOINTS) for (const outcome of ['ok', 'error']) probeDuration.zero({ endpoint, outcome });
  for (const from of ['None', ...POOL_HEALTH_REASONS]) {
    for (const to of POOL_HEALTH_REASONS) if (from !== to) transitions.inc({ from, to }, 0);
  }
  for (const outcome of ['success', 'failure']) conditionWrites.inc({ outcome }, 0);
  for (const check of CHECK_NAMES) checkFailing.set({ check }, 0);
  healthy.set(0);
  for (const reason of POOL_HEALTH_REASONS) verdictReason.set({ reason }, 0);

  return {
    registry,
    observeProbe(endpoint, seconds, ok) {
      probeDuration.observe({ endpoint, outcome: ok ? 'ok' : 'error' }, seconds);
    },
    observeScan(seconds, entries, complete) {
      scanDuration.observe(seconds);
      scanEntries.set(entries);
      scanComplete.set(complete ? 1 : 0);
    },
    observeChecks(checks) {
      for (const check of CHECK_NAMES) {
        const status = checks[check].status;
        checkFailing.set({ check }, status === 'failing' ? 1 : 0);
        for (const s of ['ok', 'pending', 'failing', 'unknown']) checkStatus.set({ check, status: s }, s === status ? 1 : 0);
      }
    },
    observeVerdict(verdict) {
      healthy.set(verdict?.healthy === true ? 1 : 0);
      for (const reason of POOL_HEALTH_REASONS) verdictReason.set({ reason }, verdict?.reason === reason ? 1 : 0);
    },
    observeTransition(from, to) {
      transitions.inc({ from, to });
    },
    observeConditionWrite(ok) {
      conditionWrites.inc({ outcome: ok ? 'success' : 'failure' });
    },
  };
}
