import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { type Env, EnvReader, type InClusterSettings, SERVICE_ACCOUNT_DIR } from '@arcops/common';
import { ConfigError } from './errors.ts';
import { SIDECAR_CLUSTER_ROLE } from './spec.ts';

/** The operator's settings, read once from the environment (the only place env is read). */
export interface OperatorConfig {
  /** Path of a kubeconfig file (KUBECONFIG); it wins over in-cluster credentials. */
  readonly kubeconfig: string | undefined;
  /**
   * The pod's ServiceAccount (KUBERNETES_SERVICE_HOST/PORT, SERVICE_ACCOUNT_DIR), when there is
   * no KUBECONFIG and KUBERNETES_SERVICE_HOST is set; with neither, ~/.kube/config is used.
   */
  readonly inCluster: InClusterSettings | undefined;
  readonly metricsHost: string;
  readonly metricsPort: number;
  readonly leaderElection: boolean;
  readonly leaseName: string;
  readonly leaseNamespace: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  /** Holder identity in the Lease and `reportingInstance` of Events. */
  readonly identity: string;
  /**
   * This pod's UID (POD_UID, from the downward API): with POD_NAME, the Lease is owned by the pod
   * that holds it, so that it goes with the last operator pod (`helm uninstall` leaves none).
   */
  readonly podUid: string | undefined;
  /** Namespaces to watch; empty = every namespace. */
  readonly watchNamespaces: readonly string[];
  readonly resyncMs: number;
  /** Server-side timeout of one watch request; a watch silent for longer than this plus a grace is restarted. */
  readonly watchTimeoutMs: number;
  readonly workers: number;
  /** How long a change of an owned object or pod waits, so that a burst of them makes one reconcile. */
  readonly coalesceMs: number;
  /** How long what a read of a token Secret found is used again (0 = read it on every reconcile). */
  readonly secretCacheMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** Global token bucket for retries: sustained rate and burst. */
  readonly queueQps: number;
  readonly queueBurst: number;
  readonly logLevel: string;
  /** The ClusterRole the sidecars' RoleBindings refer to (installed with the operator). */
  readonly sidecarClusterRole: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;


function defaultIdentity(): string {
  return `${hostname()}-${randomBytes(4).toString('hex')}`;
}

/**
 * Reads the operator's environment once, validates it and returns a frozen config. Throws one
 * ConfigError listing every problem.
 */
export function loadConfig(env: Env): OperatorConfig {
  const r = new EnvReader(env);

  const watchNamespaces = [...new Set((r.optStr('WATCH_NAMESPACES') ?? '').split(',').map((s) => s.trim()).filter((s) => s !== ''))];
  for (const ns of watchNamespaces) {
    if (!DNS_LABEL.test(ns) || ns.length > 63) r.problems.push(`WATCH_NAMESPACES: ${JSON.stringify(ns)} is not a namespace name`);
  }

  const leaseName = r.str('LEASE_NAME', 'arc-operator-leader');
  if (!DNS_SUBDOMAIN.test(leaseName) || leaseName.length > 253) r.problems.push(`LEASE_NAME: ${JSON.stringify(leaseName)} is not a valid object name`);
  const leaseNamespace = r.optStr('LEASE_NAMESPACE') ?? r.optStr('POD_NAMESPACE') ?? 'default';
  if (!DNS_LABEL.test(leaseNamespace)) r.problems.push(`LEASE_NAMESPACE: ${JSON.stringify(leaseNamespace)} is not a namespace name`);

  const leaseDurationMs = r.seconds('LEASE_DURATION_SECONDS', 15, 1, 3600);
  const renewDeadlineMs = r.seconds('LEASE_RENEW_DEADLINE_SECONDS', 10, 0.5, 3600);
  const retryPeriodMs = r.seconds('LEASE_RETRY_PERIOD_SECONDS', 2, 0.1, 600);
  if (renewDeadlineMs >= leaseDurationMs) {
    r.problems.push('LEASE_RENEW_DEADLINE_SECONDS must be lower than LEASE_DURATION_SECONDS: a leader must give up before others may take over');
  }
  if (retryPeriodMs >= renewDeadlineMs) {
    r.problems.push('LEASE_RETRY_PERIOD_SECONDS must be lower than LEASE_RENEW_DEADLINE_SECONDS: a leader must get more than one renewal attempt');
  }

  const backoffBaseMs = r.seconds('BACKOFF_BASE_SECONDS', 1, 0.001, 3600);
  const backoffMaxMs = r.seconds('BACKOFF_MAX_SECONDS', 300, 0.01, 86_400);
  if (backoffBaseMs > backoffMaxMs) r.problems.push('BACKOFF_BASE_SECONDS must not exceed BACKOFF_MAX_SECONDS');

  const logLevel = r.logLevel();

  const identity = r.optStr('POD_NAME') ?? defaultIdentity();
  if (identity.length > 253) r.problems.push('POD_NAME is too long to be a Lease holder identity (253 characters at most)');

  const sidecarClusterRole = r.str('SIDECAR_CLUSTER_ROLE', SIDECAR_CLUSTER_ROLE);
  if (!DNS_SUBDOMAIN.test(sidecarClusterRole) || sidecarClusterRole.length > 253) {
    r.problems.push(`SIDECAR_CLUSTER_ROLE: ${JSON.stringify(sidecarClusterRole)} is not a ClusterRole name the chart would make`);
  }

  const kubeconfig = r.optStr('KUBECONFIG');
  const serviceHost = r.optStr('KUBERNETES_SERVICE_HOST');
  const servicePort = r.int('KUBERNETES_SERVICE_PORT', 443, 1, 65535);
  const serviceAccountDir = r.str('SERVICE_ACCOUNT_DIR', SERVICE_ACCOUNT_DIR);

  const config: OperatorConfig = {
    kubeconfig,
    inCluster: kubeconfig === undefined && serviceHost !== undefined ? Object.freeze({ host: serviceHost, port: servicePort, serviceAccountDir }) : undefined,
    metricsHost: r.str('METRICS_HOST', '0.0.0.0'),
    metricsPort: r.int('METRICS_PORT', 8080, 0, 65535),
    leaderElection: r.bool('LEADER_ELECTION', true),
    leaseName,
    leaseNamespace,
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    identity,
    podUid: r.optStr('POD_NAME') === undefined ? undefined : r.optStr('POD_UID'),
    watchNamespaces,
    resyncMs: r.seconds('RESYNC_SECONDS', 300, 1, 86_400),
    watchTimeoutMs: r.seconds('WATCH_TIMEOUT_SECONDS', 120, 1, 3600),
    workers: r.int('WORKERS', 8, 1, 64),
    coalesceMs: r.seconds('COALESCE_SECONDS', 1, 0, 60),
    secretCacheMs: r.seconds('SECRET_CACHE_SECONDS', 10, 0, 3600),
    backoffBaseMs,
    backoffMaxMs,
    queueQps: r.int('QUEUE_QPS', 10, 1, 10_000),
    queueBurst: r.int('QUEUE_BURST', 100, 1, 100_000),
    logLevel,
    sidecarClusterRole,
  };
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return Object.freeze(config);
}
