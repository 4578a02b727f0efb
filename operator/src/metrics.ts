import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
}

export function createMetrics(registry: Registry = new Registry(), options: { defaults?: boolean } = {}): OperatorMetrics {
  if (options.defaults ?? true) collectDefaultMetrics({ register: registry, prefix: 'arc_operator_' });
  const registers = [registry];
  return {
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
  };
}
