/**
 * The sidecar's verdicts as pure functions: observations in, trackers and a verdict out.
 * No I/O, no timers, no clock of its own: every function takes `now` (ms) from its caller,
 * never mutates its inputs, and is tested with tables (test/sidecar/checks.test.ts).
 */
import { EXPECTED_POOL_IMPLEMENTATION, type PoolHealthReason } from '@arcops/common';
import type { Thresholds } from './config.ts';
import type { GlobSet } from './glob.ts';

/** One reading of the pool, whichever shape it came from. */
export interface PoolSample {
  readonly source: 'flat' | 'query-pool';
  readonly poolSize: number;
  readonly active: number;
  readonly idle: number;
  /** Connections that can serve or are serving (not being checked, recreated, or known broken). */
  readonly live: number;
  readonly queueDepth: number;
  /** Undefined when the service does not report it (upstream Arc). */
  readonly oldestWaitMs: number | undefined;
  readonly totalQueriesTimeout: number | undefined;
  readonly poolImplementation: string | undefined;
}

export interface RuntimeSample {
  readonly poolImplementation: string | undefined;
  readonly loadedModules: readonly string[];
}

/** How the canary `SELECT 1` ended. */
export type CanaryOutcome =
  | { readonly kind: 'ok'; readonly ms: number }
  | { readonly kind: 'wait-deadline'; readonly message: string }
  | { readonly kind: 'queue-full'; readonly message: string }
  | { readonly kind: 'error'; readonly message: string };

export interface ScanOutcome {
  /** Forbidden files found (paths as the sidecar sees them), at most a few dozen. */
  readonly hits: readonly string[];
  /** False when a limit stopped the walk or a root could not be read. */
  readonly complete: boolean;
  readonly entries: number;
  /** Problems reading roots (unreadable, process not found). */
  readonly errors: readonly string[];
  readonly roots: number;
}

export type Fetched<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** What one probe cycle saw. Fields left undefined were not measured this cycle. */
export interface Observation {
  readonly at: number;
  readonly metrics: Fetched<PoolSample>;
  /** `value: undefined` means the service has no runtime endpoint (upstream Arc). */
  readonly runtime?: Fetched<RuntimeSample | undefined>;
  /** Canaries that finished since the previous observation, oldest first. */
  readonly canaries?: readonly CanaryOutcome[];
  /** The latest finished scan (undefined: scanning is off or has not finished once). */
  readonly scan?: ScanOutcome;
}

export const CHECK_NAMES = ['serviceReachable', 'poolExhausted', 'pendingTimeouts', 'poolCapacity', 'forbiddenModule'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

/** The reason each check reports when it fails. */
export const CHECK_REASON: Readonly<Record<CheckName, Exclude<PoolHealthReason, 'Healthy'>>> = {
  serviceReachable: 'ServiceUnreachable',
  poolExhausted: 'PoolExhausted',
  pendingTimeouts: 'PendingTimeouts',
  poolCapacity: 'PoolCapacityLost',
  forbiddenModule: 'ForbiddenModule',
};

/**
 * When several checks fail, the verdict names the first of these: the root cause before its
 * symptoms. A forbidden module is why a pool loses capacity, lost capacity is why it exhausts,
 * and exhaustion is why callers time out; without answers nothing else can be judged.
 */
export const PRECEDENCE: readonly CheckName[] = ['forbiddenModule', 'serviceReachable', 'poolCapacity', 'poolExhausted', 'pendingTimeouts'];

export type CheckStatus = 'ok' | 'pending' | 'failing' | 'unknown';

export interface CheckResult {
  readonly status: CheckStatus;
  readonly message: string;
  /** Since when the condition behind a pending/failing status holds (ms). */
  readonly since?: number;
  readonly detail?: Readonly<Record<string, unknown>>;
}

export type CheckResults = Readonly<Record<CheckName, CheckResult>>;

export interface Verdict {
  readonly healthy: boolean;
  readonly reason: PoolHealthReason;
  /** Frozen when the reason began (live figures are in the checks). */
  readonly message: string;
  /** When this reason began (ms). */
  readonly since: number;
}

/** Everything the checks remember between observations. */
export interface MonitorState {
  readonly startedAt: number;
  readonly lastAnswerAt: number | undefined;
  readonly lastError: string | undefined;
  readonly lastSample: PoolSample | undefined;
  readonly saturatedSince: number | undefined;
  readonly lowCapacitySince: number | undefined;
  readonly canaryStreak: number;
  readonly lastCanary: CanaryOutcome | undefined;
  readonly timeoutSamples: ReadonlyArray<{ readonly at: number; readonly total: number }>;
  readonly runtime: RuntimeSample | undefined;
  readonly runtimeSupported: boolean | undefined;
  readonly scan: ScanOutcome | undefined;
  readonly verdict: Verdict | undefined;
  /** While unhealthy: since when every check has been clear. */
  readonly clearSince: number | undefined;
}

export function initialState(startedAt: number): MonitorState {
  return {
    startedAt,
    lastAnswerAt: undefined,
    lastError: undefined,
    lastSample: undefined,
    saturatedSince: undefined,
    lowCapacitySince: undefined,
    canaryStreak: 0,
    lastCanary: undefined,
    timeoutSamples: [],
    runtime: undefined,
    runtimeSupported: undefined,
    scan: undefined,
    verdict: undefined,
    clearSince: undefined,
  };
}

/** Every connection busy (none idle) and callers queued. */
export function isSaturated(s: PoolSample): boolean {
  return s.idle === 0 && s.queueDepth > 0;
}

function since(current: number | undefined, holds: boolean, now: number): number | undefined {
  if (!holds) return undefined;
  return current ?? now;
}

function pruneTimeoutSamples(
  samples: MonitorState['timeoutSamples'],
  total: number | undefined,
  now: number,
  windowMs: number,
): MonitorState['timeoutSamples'] {
  if (total === undefined) return samples.filter((s) => s.at >= now - windowMs);
  const last = samples[samples.length - 1];
  // The counter went backwards: the service restarted. Start the window over.
  const kept = last !== undefined && total < last.total ? [] : samples.filter((s) => s.at >= now - windowMs);
  return [...kept, { at: now, total }];
}

function nextCanaryStreak(streak: number, canaries: readonly CanaryOutcome[]): number {
  return canaries.reduce((n, c) => (c.kind === 'wait-deadline' || c.kind === 'queue-full' ? n + 1 : 0), streak);
}

/** Folds one observation into the trackers. Missing readings leave trackers as they were. */
export function observe(state: MonitorState, obs: Observation, thresholds: Thresholds): MonitorState {
  const now = obs.at;
  const canaries = obs.canaries ?? [];
  let next: MonitorState = {
    ...state,
    canaryStreak: nextCanaryStreak(state.canaryStreak, canaries),
    lastCanary: canaries[canaries.length - 1] ?? state.lastCanary,
    scan: obs.scan ?? state.scan,
  };
  if (obs.metrics.ok) {
    const s = obs.metrics.value;
    next = {
      ...next,
      lastAnswerAt: now,
      lastError: undefined,
      lastSample: s,
      saturatedSince: since(state.saturatedSince, isSaturated(s), now),
      lowCapacitySince: since(state.lowCapacitySince, s.live < s.poolSize, now),
      timeoutSamples: pruneTimeoutSamples(state.timeoutSamples, s.totalQueriesTimeout, now, thresholds.pendingTimeoutsWindowMs),
    };
  } else {
    next = { ...next, lastError: obs.metrics.error };
  }
  if (obs.runtime !== undefined && obs.runtime.ok) {
    next = { ...next, runtime: obs.runtime.value, runtimeSupported: obs.runtime.value !== undefined };
  }
  return next;
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

function checkReachable(state: MonitorState, now: number, t: Thresholds): CheckResult {
  const from = state.lastAnswerAt ?? state.startedAt;
  const silentMs = now - from;
  if (state.lastError === undefined && state.lastAnswerAt !== undefined) {
    return { status: 'ok', message: 'the service answers', since: state.lastAnswerAt };
  }
  const what = state.lastAnswerAt === undefined ? 'no answer yet' : `no usable answer for ${secs(silentMs)}`;
  const message = `${what}${state.lastError === undefined ? '' : `: ${state.lastError}`}`;
  const detail = { silentSeconds: silentMs / 1000, thresholdSeconds: t.unreachableMs / 1000 };
  return { status: silentMs >= t.unreachableMs ? 'failing' : 'pending', message, since: from, detail };
}

function checkExhausted(state: MonitorState, now: number, t: Thresholds): CheckResult {
  const s = state.lastSample;
  const canary = state.lastCanary;
  const canaryFailing = state.canaryStreak >= t.canaryFailures;
  const canaryDetail = { canaryFailuresInARow: state.canaryStreak, canaryFailuresThreshold: t.canaryFailures, lastCanary: canary?.kind };
  if (canaryFailing && canary !== undefined && canary.kind !== 'ok') {
    const text = 'message' in canary ? canary.message : '';
    return {
      status: 'failing',
      message: `the canary SELECT 1 was refused ${state.canaryStreak} times in a row: ${text}`,
      detail: canaryDetail,
    };
  }
  if (s === undefined) return { status: 'unknown', message: 'no pool reading yet', detail: canaryDetail };
  const figures = { active: s.active, idle: s.idle, poolSize: s.poolSize, queueDepth: s.queueDepth, ...canaryDetail };
  if (state.saturatedSince === undefined) {
    return { status: 'ok', message: `${s.active} of ${s.poolSize} connections busy, ${s.queueDepth} waiting`, detail: figures };
  }
  const forMs = now - state.saturatedSince;
  const message = `all connections busy (${s.active} of ${s.poolSize}) with ${s.queueDepth} callers queued for ${secs(forMs)}`;
  return {
    status: forMs >= t.exhaustedMs ? 'failing' : 'pending',
    message,
    since: state.saturatedSince,
    detail: { ...figures, saturatedSeconds: forMs / 1000, thresholdSeconds: t.exhaustedMs / 1000 },
  };
}

function checkPendingTimeouts(state: MonitorState, now: number, t: Thresholds): CheckResult {
  const s = state.lastSample;
  if (s === undefined) return { status: 'unknown', message: 'no pool reading yet' };
  const samples = state.timeoutSamples.filter((x) => x.at >= now - t.pendingTimeoutsWindowMs);
  const first = samples[0];
  const last = samples[samples.length - 1];
  const growth = first !== undefined && last !== undefined ? last.total - first.total : 0;
  const detail = {
    timeoutsInWindow: growth,
    maxCount: t.pendingTimeoutsMax,
    windowSeconds: t.pendingTimeoutsWindowMs / 1000,
    oldestWaitSeconds: s.oldestWaitMs === undefined ? null : s.oldestWaitMs / 1000,
    oldestWaitMaxSeconds: t.oldestWaitMaxMs / 1000,
  };
  if (s.totalQueriesTimeout !== undefined && growth > t.pendingTimeoutsMax) {
    return {
      status: 'failing',
      message: `${growth} callers gave up waiting for a connection in the last ${secs(t.pendingTimeoutsWindowMs)} (more than ${t.pendingTimeoutsMax})`,
      since: first?.at,
      detail,
    };
  }
  if (s.oldestWaitMs !== undefined && s.oldestWaitMs >= t.oldestWaitMaxMs) {
    return {
      status: 'failing',
      message: `the oldest caller has waited ${secs(s.oldestWaitMs)} for a connection (limit ${secs(t.oldestWaitMaxMs)})`,
      detail,
    };
  }
  if (s.totalQueriesTimeout === undefined && s.oldestWaitMs === undefined) {
    return { status: 'unknown', message: 'the service reports neither total_queries_timeout nor oldest_wait_ms', detail };
  }
  return { status: 'ok', message: `${growth} wait timeouts in the last ${secs(t.pendingTimeoutsWindowMs)}`, detail };
}

function checkCapacity(state: MonitorState, now: number, t: Thresholds): CheckResult {
  const s = state.lastSample;
  if (s === undefined) return { status: 'unknown', message: 'no pool reading yet' };
  const detail = { live: s.live, poolSize: s.poolSize, thresholdSeconds: t.capacityLostMs / 1000 };
  if (state.lowCapacitySince === undefined) return { status: 'ok', message: `${s.live} of ${s.poolSize} connections live`, detail };
  const forMs = now - state.lowCapacitySince;
  return {
    status: forMs >= t.capacityLostMs ? 'failing' : 'pending',
    message: `only ${s.live} of ${s.poolSize} connections live for ${secs(forMs)}`,
    since: state.lowCapacitySince,
    detail: { ...detail, lowSeconds: forMs / 1000 },
  };
}

function checkForbidden(state: MonitorState, globs: GlobSet): CheckResult {
  const impl = state.runtime?.poolImplementation ?? state.lastSample?.poolImplementation;
  const loaded = (state.runtime?.loadedModules ?? []).filter((m) => globs.matches(m));
  const files = state.scan?.hits ?? [];
  const detail = {
    poolImplementation: impl ?? null,
    loadedForbidden: loaded.slice(0, 20),
    filesFound: files.slice(0, 20),
    scan: state.scan === undefined ? null : { complete: state.scan.complete, entries: state.scan.entries, roots: state.scan.roots, errors: state.scan.errors },
    runtimeEndpoint: state.runtimeSupported ?? null,
  };
  const problems: string[] = [];
  if (impl !== undefined && impl !== EXPECTED_POOL_IMPLEMENTATION) {
    problems.push(`the service runs pool implementation ${JSON.stringify(impl)}, not ${EXPECTED_POOL_IMPLEMENTATION}`);
  }
  if (loaded.length > 0) problems.push(`the service has loaded ${loaded.join(', ')}`);
  if (files.length > 0) problems.push(`forbidden file${files.length > 1 ? 's' : ''} in the service's tree: ${files.slice(0, 5).join(', ')}`);
  if (problems.length > 0) return { status: 'failing', message: problems.join('; '), detail };
  const scanNote =
    state.scan === undefined ? 'no file scan' : state.scan.complete ? `${state.scan.entries} files scanned` : `scan incomplete (${state.scan.errors.join('; ') || 'limit reached'})`;
  if (impl === undefined && state.runtime === undefined && state.scan === undefined) {
    return { status: 'unknown', message: 'nothing to judge yet: no runtime report and no file scan', detail };
  }
  return { status: 'ok', message: `no forbidden module (${scanNote})`, detail };
}

/** Judges every check from the trackers at `now`. */
export function assess(state: MonitorState, now: number, t: Thresholds, globs: GlobSet): CheckResults {
  return {
    serviceReachable: checkReachable(state, now, t),
    poolExhausted: checkExhausted(state, now, t),
    pendingTimeouts: checkPendingTimeouts(state, now, t),
    poolCapacity: checkCapacity(state, now, t),
    forbiddenModule: checkForbidden(state, globs),
  };
}

/** The first failing check in precedence order, if any. */
export function firstFailing(checks: CheckResults): CheckName | undefined {
  return PRECEDENCE.find((name) => checks[name].status === 'failing');
}

export interface Decision {
  readonly verdict: Verdict | undefined;
  readonly clearSince: number | undefined;
}

/**
 * The reported verdict, with hysteresis: a problem is reported at once (each check has its own
 * "for how long" already); Healthy comes back only after every check has been clear
 * (neither failing nor pending) for `recoveryMs`. The first verdict waits until the service
 * has answered once (or is declared unreachable), and is reported at once.
 */
export function decide(state: MonitorState, checks: CheckResults, now: number, recoveryMs: number): Decision {
  const failing = firstFailing(checks);
  const prev = state.verdict;
  if (failing !== undefined) {
    const reason = CHECK_REASON[failing];
    if (prev !== undefined && !prev.healthy && prev.reason === reason) return { verdict: prev, clearSince: undefined };
    return { verdict: { healthy: false, reason, message: checks[failing].message, since: now }, clearSince: undefined };
  }
  if (prev === undefined) {
    if (state.lastAnswerAt === undefined) return { verdict: undefined, clearSince: undefined };
    return { verdict: healthyVerdict(now), clearSince: undefined };
  }
  if (prev.healthy) return { verdict: prev, clearSince: undefined };
  // A problem still forming (a pending check) is not "clear": recovering needs a quiet pool.
  if (CHECK_NAMES.some((name) => checks[name].status === 'pending')) return { verdict: prev, clearSince: undefined };
  const clearSince = state.clearSince ?? now;
  if (now - clearSince >= recoveryMs) return { verdict: healthyVerdict(now), clearSince: undefined };
  return { verdict: prev, clearSince };
}

function healthyVerdict(now: number): Verdict {
  return { healthy: true, reason: 'Healthy', message: 'every check passes', since: now };
}

export interface Evaluation {
  readonly state: MonitorState;
  readonly checks: CheckResults;
  /** Undefined until the first verdict is settled. */
  readonly verdict: Verdict | undefined;
  /** Set when the verdict's reason changed with this observation. */
  readonly transition: { readonly from: Verdict | undefined; readonly to: Verdict } | undefined;
}

/** One step: fold the observation in, judge, decide. */
export function evaluate(state: MonitorState, obs: Observation, t: Thresholds, globs: GlobSet): Evaluation {
  const observed = observe(state, obs, t);
  const checks = assess(observed, obs.at, t, globs);
  const { verdict, clearSince } = decide(observed, checks, obs.at, t.recoveryMs);
  const prev = state.verdict;
  const changed = verdict !== undefined && (prev === undefined || prev.reason !== verdict.reason);
  return {
    state: { ...observed, verdict, clearSince },
    checks,
    verdict,
    transition: changed ? { from: prev, to: verdict } : undefined,
  };
}
