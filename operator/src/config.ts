import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ConfigError } from './errors.ts';

/** The operator's settings, read once from the environment (the only place env is read). */
export interface OperatorConfig {
  /** Path of a kubeconfig file; undefined = in-cluster credentials, else ~/.kube/config. */
  readonly kubeconfig: string | undefined;
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
  /** Namespaces to watch; empty = every namespace. */
  readonly watchNamespaces: readonly string[];
  readonly resyncMs: number;
  /** Server-side timeout of one watch request; a watch silent for longer than this plus a grace is restarted. */
  readonly watchTimeoutMs: number;
  readonly workers: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** Global token bucket for retries: sustained rate and burst. */
  readonly queueQps: number;
  readonly queueBurst: number;
  readonly logLevel: string;
}

type Env = Readonly<Record<string, string | undefined>>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

class Reader {
  readonly problems: string[] = [];
  private readonly env: Env;

  constructor(env: Env) {
    this.env = env;
  }

  optStr(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  str(name: string, fallback: string): string {
    return this.optStr(name) ?? fallback;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.optStr(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(n)) {
      this.problems.push(`${name} must be an integer, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    if (n < min || n > max) {
      this.problems.push(`${name} must be between ${min} and ${max}, got ${n}`);
      return fallback;
    }
    return n;
  }

  /** Seconds (decimals allowed), returned in milliseconds. */
  seconds(name: string, fallbackSeconds: number, min: number, max: number): number {
    const raw = this.optStr(name);
    if (raw === undefined) return fallbackSeconds * 1000;
    const n = Number(raw);
    if (!/^\d+(\.\d+)?$/.test(raw) || !Number.isFinite(n)) {
      this.problems.push(`${name} must be a number of seconds, got ${JSON.stringify(raw)}`);
      return fallbackSeconds * 1000;
    }
    if (n < min || n > max) {
      this.problems.push(`${name} must be between ${min} and ${max} seconds, got ${n}`);
      return fallbackSeconds * 1000;
    }
    return Math.round(n * 1000);
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.optStr(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['on', 'true', '1', 'yes'].includes(raw)) return true;
    if (['off', 'false', '0', 'no'].includes(raw)) return false;
    this.problems.push(`${name} must be on or off, got ${JSON.stringify(raw)}`);
    return fallback;
  }
}

function defaultIdentity(): string {
  return `${hostname()}-${randomBytes(4).toString('hex')}`;
}

/**
 * Reads the operator's environment once, validates it and returns a frozen config. Throws one
 * ConfigError listing every problem.
 */
export function loadConfig(env: Env): OperatorConfig {
  const r = new Reader(env);

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

  const logLevel = r.str('LOG_LEVEL', 'info');
  if (!LOG_LEVELS.includes(logLevel)) r.problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);

  const identity = r.optStr('POD_NAME') ?? defaultIdentity();
  if (identity.length > 253) r.problems.push('POD_NAME is too long to be a Lease holder identity (253 characters at most)');

  const config: OperatorConfig = {
    kubeconfig: r.optStr('KUBECONFIG'),
    metricsHost: r.str('METRICS_HOST', '0.0.0.0'),
    metricsPort: r.int('METRICS_PORT', 8080, 0, 65535),
    leaderElection: r.bool('LEADER_ELECTION', true),
    leaseName,
    leaseNamespace,
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    identity,
    watchNamespaces,
    resyncMs: r.seconds('RESYNC_SECONDS', 300, 1, 86_400),
    watchTimeoutMs: r.seconds('WATCH_TIMEOUT_SECONDS', 120, 1, 3600),
    workers: r.int('WORKERS', 2, 1, 64),
    backoffBaseMs,
    backoffMaxMs,
    queueQps: r.int('QUEUE_QPS', 10, 1, 10_000),
    queueBurst: r.int('QUEUE_BURST', 100, 1, 100_000),
    logLevel,
  };
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return Object.freeze(config);
}
