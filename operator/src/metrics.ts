import { POOL_HEALTH_REASONS } from '@arcops/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Results of one reconcile. */
export const RECONCILE_RESULTS = ['success', 'requeue', 'error'] as const;
/** Results of a remediation decision (arc_operator_remediations_total). */
export const REMEDIATION_RESULTS = ['evicted', 'blocked', 'gone', 'failed', 'dry_run', 'image_fault', 'rolled_back'] as const;
/** Reasons a pod is remediated for: every unhealthy reason of the sidecar, and Unknown. */
export const REMEDIATION_REASONS = [...POOL_HEALTH_REASONS.filter((r) => r !== 'Healthy'), 'Unknown'] as const;
/** Kinds the operator applies for each ArcDeployment, and the outcomes of an apply. */
export const APPLY_KINDS = ['Deployment', 'Service', 'ServiceAccount', 'RoleBinding', 'PodDisruptionBudget', 'PersistentVolumeClaim'] as const;
export const APPLY_RESULTS = ['unchanged', 'created', 'updated', 'conflict', 'error'] as const;
export const LEADER_EVENTS = ['acquired', 'lost', 'released'] as const;
/**
 * What the operator needs to do its work (arc_operator_ready{check}): its caches are filled, it
 * leads (or leader election is off), and its last request to the API server got an answer.
 */
export const READY_CHECKS = ['caches_synced', 'leader', 'api_reachable'] as const;
export type ReadyCheck = (typeof READY_CHECKS)[number];

/**
 * prom-client's default metrics that are gauges with a `_total` name (promtool check metrics:
 * "non-counter metrics should not have _total suffix"); the same figures stay available without
 * the suffix, by type (`nodejs_active_handles{type}`, ...).
 */
export const MISNAMED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;

/** The operator's Prometheus metrics, on a Registry of their own (never the global one). */
export interface OperatorMetrics {
  readonly registry: Registry;
  readonly reconcileTotal: Counter<'result'>;
  readonly reconcileDuration: Histogram<'result'>;
  readonly queueDepth: Gauge;
  readonly leader: Gauge;
  readonly leaseContact: Gauge;
  readonly applyTotal: Counter<'kind' | 'result'>;
  readonly statusUpdatesTotal: Counter;
  readonly watchRestartsTotal: Counter<'resource' | 'reason'>;
  readonly eventsTotal: Counter<'type' | 'reason'>;
  readonly leaderTransitionsTotal: Counter<'event'>;
  readonly remediationsTotal: Counter<'reason' | 'result'>;
  readonly remediationLatency: Histogram<'reason'>;
  readonly ready: Gauge<'check'>;
  /** Read when /metrics is scraped to set arc_operator_ready (the operator sets it). */
  readiness: (() => Record<ReadyCheck, boolean>) | undefined;
  readonly storm: Gauge<'arcdeployment_namespace' | 'arcdeployment'>;
}

export function createMetrics(registry: Registry = new Registry(), options: { defaults?: boolean } = {}): OperatorMetrics {
  if (options.defaults ?? true) {
    collectDefaultMetrics({ register: registry, prefix: 'arc_operator_' });
    for (const name of MISNAMED_DEFAULT_METRICS) registry.removeSingleMetric(`arc_operator_${name}`);
  }
  const registers = [registry];
  const metrics: OperatorMetrics = {
    registry,
    reconcileTotal: new Counter({
      name: 'arc_operator_reconcile_total',
      help: 'Reconciles of ArcDeployments by result (success, requeue = waiting on something with backoff, error)',
      labelNames: ['result'],
      registers,
    }),
    reconcileDuration: new Histogram({
      name: 'arc_operator_reconcile_duration_seconds',
      help: 'Time one reconcile of an ArcDeployment took',
      labelNames: ['result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    queueDepth: new Gauge({ name: 'arc_operator_queue_depth', help: 'ArcDeployment keys waiting for a worker', registers }),
    leader: new Gauge({ name: 'arc_operator_leader', help: '1 while this instance holds the leader Lease and acts, else 0', registers }),
    leaseContact: new Gauge({
      name: 'arc_operator_lease_contact_timestamp_seconds',
      help: 'When this instance last got an answer to its leader Lease read (every LEASE_RETRY_PERIOD_SECONDS, leader and standby alike); stops advancing while the API server or its storage is unreachable',
      registers,
    }),
    applyTotal: new Counter({
      name: 'arc_operator_apply_total',
      help: 'Owned objects compared with their desired state, by kind and result (unchanged, created, updated, conflict, error)',
      labelNames: ['kind', 'result'],
      registers,
    }),
    statusUpdatesTotal: new Counter({ name: 'arc_operator_status_updates_total', help: 'ArcDeployment status writes', registers }),
    watchRestartsTotal: new Counter({
      name: 'arc_operator_watch_restarts_total',
      help: 'Watches restarted by resource and reason (error, silent = the watchdog aborted it, expired = re-listed)',
      labelNames: ['resource', 'reason'],
      registers,
    }),
    eventsTotal: new Counter({
      name: 'arc_operator_events_total',
      help: 'Kubernetes Events recorded (deduplicated repeats included) by type and reason',
      labelNames: ['type', 'reason'],
      registers,
    }),
    leaderTransitionsTotal: new Counter({
      name: 'arc_operator_leader_transitions_total',
      help: 'Leadership changes of this instance (acquired, lost, released)',
      labelNames: ['event'],
      registers,
    }),
    remediationsTotal: new Counter({
      name: 'arc_operator_remediations_total',
      help: 'Remediation decisions by pod condition reason and result (evicted, blocked = refused by the PodDisruptionBudget, gone, failed, dry_run, image_fault, rolled_back)',
      labelNames: ['reason', 'result'],
      registers,
    }),
    remediationLatency: new Histogram({
      name: 'arc_operator_remediation_latency_seconds',
      help: 'Time from a pod becoming a candidate (PoolHealthy False for unhealthySeconds) to its eviction call',
      labelNames: ['reason'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    ready: new Gauge({
      name: 'arc_operator_ready',
      help: 'Per check, 1 when it passes: caches_synced (every informer cache is filled), leader (this instance acts: it holds the Lease, or leader election is off), api_reachable (its last request to the API server got an answer)',
      labelNames: ['check'],
      registers,
      collect() {
        const now = metrics.readiness?.();
        if (now !== undefined) for (const check of READY_CHECKS) this.set({ check }, now[check] ? 1 : 0);
      },
    }),
    storm: new Gauge({
      name: 'arc_operator_storm',
      help: "1 while the storm guard holds an ArcDeployment's remediation back (more unhealthy pods than its stormThreshold), else 0; reported by the acting instance",
      labelNames: ['arcdeployment_namespace', 'arcdeployment'],
      registers,
    }),
    readiness: undefined,
  };
  zeroKnownSeries(metrics);
  return metrics;
}

/**
 * Every labelled series whose label values are known in advance starts at 0, so that the first
 * event is an increase (a series born at 1 is invisible to increase() and rate()).
 */
function zeroKnownSeries(m: OperatorMetrics): void {
  for (const result of RECONCILE_RESULTS) {
    m.reconcileTotal.inc({ result }, 0);
    m.reconcileDuration.zero({ result });
  }
  for (const reason of REMEDIATION_REASONS) {
    for (const result of REMEDIATION_RESULTS) m.remediationsTotal.inc({ reason, result }, 0);
    m.remediationLatency.zero({ reason });
  }
  for (const kind of APPLY_KINDS) for (const result of APPLY_RESULTS) m.applyTotal.inc({ kind, result }, 0);
  for (const event of LEADER_EVENTS) m.leaderTransitionsTotal.inc({ event }, 0);
  for (const check of READY_CHECKS) m.ready.set({ check }, 0);
  m.queueDepth.set(0);
  m.leader.set(0);
}
