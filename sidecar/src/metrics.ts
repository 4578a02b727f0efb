import { POOL_HEALTH_REASONS } from '@arcops/common';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { CHECK_NAMES, type CheckResults, type Verdict } from './checks.ts';

export type ProbeEndpoint = 'metrics' | 'runtime' | 'canary';

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

export function createMetrics(options: { registry?: Registry; defaultMetrics?: boolean } = {}): SidecarMetrics {
  const registry = options.registry ?? new Registry();
  // The event-loop delay monitor samples every `eventLoopMonitoringPrecision` ms: at prom-client's
  // default (10 ms) that alone costs about 0.6 % of a core; once a second is plenty for a sidecar.
  if (options.defaultMetrics === true) {
    collectDefaultMetrics({ register: registry, prefix: 'arc_sidecar_', eventLoopMonitoringPrecision: 1000 });
  }
  const registers = [registry];
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
