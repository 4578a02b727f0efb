import { DEFAULT_FORBIDDEN_MODULES, type PoolHealthReason } from '@arcops/common';
import { describe, expect, it } from 'vitest';
import {
  assess,
  type CanaryOutcome,
  evaluate,
  initialState,
  type MonitorState,
  type Observation,
  type PoolSample,
  PRECEDENCE,
  type ScanOutcome,
} from '../../sidecar/src/checks.ts';
import type { Thresholds } from '../../sidecar/src/config.ts';
import { compileGlobs } from '../../sidecar/src/glob.ts';

// The defaults of config.ts, written out: the tables below read as "with the shipped settings".
const T: Thresholds = {
  exhaustedMs: 15_000,
  canaryFailures: 2,
  pendingTimeoutsMax: 5,
  pendingTimeoutsWindowMs: 60_000,
  oldestWaitMaxMs: 4_000,
  capacityLostMs: 30_000,
  unreachableMs: 15_000,
  recoveryMs: 30_000,
};
const globs = compileGlobs(DEFAULT_FORBIDDEN_MODULES);

const quiet: PoolSample = {
  source: 'flat',
  poolSize: 5,
  active: 0,
  idle: 5,
  live: 5,
  queueDepth: 0,
  oldestWaitMs: 0,
  totalQueriesTimeout: 0,
  poolImplementation: 'DuckDBConnectionPool',
};
const saturated: Partial<PoolSample> = { active: 5, idle: 0, queueDepth: 3, oldestWaitMs: 1200 };
const lostOne: Partial<PoolSample> = { idle: 4, live: 4 };
const cleanScan: ScanOutcome = { hits: [], complete: true, entries: 120, errors: [], roots: 1 };
const dirtyScan: ScanOutcome = { ...cleanScan, hits: ['/app/dist/duckdb_pool_simple.js'] };
const deadline: CanaryOutcome = { kind: 'wait-deadline', message: 'No available connections after 5.0s' };
const canaryOk: CanaryOutcome = { kind: 'ok', ms: 2 };

/** One observation, `at` seconds after start; `pool: null` means the service did not answer. */
interface Step {
  at: number;
  pool?: Partial<PoolSample> | null;
  canary?: CanaryOutcome;
  scan?: ScanOutcome;
  runtime?: { poolImplementation?: string; loadedModules?: string[] } | null;
}

function observation(step: Step): Observation {
  const metrics: Observation['metrics'] =
    step.pool === null ? { ok: false, error: 'connect ECONNREFUSED 127.0.0.1:8000' } : { ok: true, value: { ...quiet, ...step.pool } };
  const runtime: Observation['runtime'] =
    step.runtime === undefined
      ? undefined
      : step.runtime === null
        ? { ok: true, value: undefined }
        : { ok: true, value: { poolImplementation: step.runtime.poolImplementation, loadedModules: step.runtime.loadedModules ?? [] } };
  return { at: step.at * 1000, metrics, runtime, canaries: step.canary === undefined ? [] : [step.canary], scan: step.scan };
}

/** Runs the steps and returns the verdict reason after each ('-' while there is none). */
function run(steps: Step[], thresholds: Thresholds = T): { reasons: string[]; state: MonitorState } {
  let state = initialState(0);
  const reasons: string[] = [];
  for (const step of steps) {
    const ev = evaluate(state, observation(step), thresholds, globs);
    state = ev.state;
    reasons.push(ev.verdict?.reason ?? '-');
  }
  return { reasons, state };
}

/** Steps every `every` seconds from `from` to `to` (inclusive) with the same readings. */
function span(from: number, to: number, every: number, step: Omit<Step, 'at'>): Step[] {
  const out: Step[] = [];
  for (let at = from; at <= to + 1e-9; at += every) out.push({ ...step, at });
  return out;
}

const last = (r: { reasons: string[] }): string => r.reasons[r.reasons.length - 1]!;

describe('checks: one verdict per situation (shipped thresholds)', () => {
  it.each<[string, Step[], PoolHealthReason | '-']>([
    ['a quiet pool is Healthy at the first answer', [{ at: 0 }], 'Healthy'],
    ['a busy pool without a queue is Healthy', [{ at: 0, pool: { active: 5, idle: 0, queueDepth: 0 } }], 'Healthy'],
    ['no answer yet, 10 s after start: no verdict', span(0, 10, 5, { pool: null }), '-'],
    ['no answer 15 s after start: ServiceUnreachable', span(0, 15, 5, { pool: null }), 'ServiceUnreachable'],
    ['answered, then silent for 14 s: still Healthy', [{ at: 0 }, ...span(5, 14, 3, { pool: null })], 'Healthy'],
    ['answered, then silent for 15 s: ServiceUnreachable', [{ at: 0 }, ...span(5, 15, 5, { pool: null })], 'ServiceUnreachable'],
    ['saturated for 14 s: Healthy (not yet)', span(0, 14, 2, { pool: saturated }), 'Healthy'],
    ['saturated continuously for 15 s: PoolExhausted', span(0, 15, 5, { pool: saturated }), 'PoolExhausted'],
    [
      'saturated 20 s but with one idle moment in the middle: Healthy',
      [...span(0, 10, 5, { pool: saturated }), { at: 11, pool: { active: 4, idle: 1, queueDepth: 0 } }, ...span(12, 20, 4, { pool: saturated })],
      'Healthy',
    ],
    ['one canary refused at the wait deadline: Healthy', [{ at: 0 }, { at: 5, canary: deadline }], 'Healthy'],
    ['two canaries in a row refused at the wait deadline: PoolExhausted', [{ at: 0 }, { at: 5, canary: deadline }, { at: 10, canary: deadline }], 'PoolExhausted'],
    [
      'refused, served, refused: Healthy (not in a row)',
      [{ at: 0 }, { at: 5, canary: deadline }, { at: 10, canary: canaryOk }, { at: 15, canary: deadline }],
      'Healthy',
    ],
    [
      'a canary that failed otherwise (HTTP 500) does not count',
      [{ at: 0 }, { at: 5, canary: { kind: 'error', message: 'HTTP 500' } }, { at: 10, canary: { kind: 'error', message: 'HTTP 500' } }],
      'Healthy',
    ],
    ['5 wait timeouts within 60 s: Healthy (limit is "more than 5")', [{ at: 0 }, { at: 30, pool: { totalQueriesTimeout: 5 } }], 'Healthy'],
    ['6 wait timeouts within 60 s: PendingTimeouts', [{ at: 0 }, { at: 30, pool: { totalQueriesTimeout: 6 } }], 'PendingTimeouts'],
    [
      '6 wait timeouts spread over more than 60 s: Healthy',
      [{ at: 0 }, { at: 40, pool: { totalQueriesTimeout: 3 } }, { at: 80, pool: { totalQueriesTimeout: 6 } }],
      'Healthy',
    ],
    [
      'the counter going backwards (service restarted) is not growth',
      [{ at: 0, pool: { totalQueriesTimeout: 100 } }, { at: 5, pool: { totalQueriesTimeout: 0 } }, { at: 10, pool: { totalQueriesTimeout: 2 } }],
      'Healthy',
    ],
    ['the oldest waiter at 3.9 s: Healthy', [{ at: 0, pool: { ...saturated, oldestWaitMs: 3900 } }], 'Healthy'],
    ['the oldest waiter at 4 s: PendingTimeouts', [{ at: 0, pool: { ...saturated, oldestWaitMs: 4000 } }], 'PendingTimeouts'],
    ['one connection short for 29 s: Healthy', span(0, 29, 29, { pool: lostOne }), 'Healthy'],
    ['one connection short for 30 s: PoolCapacityLost', span(0, 30, 5, { pool: lostOne }), 'PoolCapacityLost'],
    [
      'a connection being recreated at one probe only: Healthy',
      [{ at: 0 }, { at: 5, pool: lostOne }, ...span(10, 40, 5, {})],
      'Healthy',
    ],
    [
      'the incident: a pool draining to zero live connections',
      [{ at: 0 }, { at: 5, pool: lostOne }, { at: 20, pool: { idle: 2, live: 2 } }, { at: 35, pool: { idle: 0, live: 0 } }],
      'PoolCapacityLost',
    ],
    ['a forbidden file in the scanned tree: ForbiddenModule at once', [{ at: 0, scan: dirtyScan }], 'ForbiddenModule'],
    [
      'a forbidden module loaded by the service: ForbiddenModule',
      [{ at: 0, runtime: { poolImplementation: 'DuckDBConnectionPool', loadedModules: ['/app/node_modules/x.js', '/app/api/duckdb_pool_simple.py'] } }],
      'ForbiddenModule',
    ],
    [
      'compiled bytecode of the broken pool loaded: ForbiddenModule',
      [{ at: 0, runtime: { loadedModules: ['/app/api/__pycache__/duckdb_pool_simple.cpython-311.pyc'] } }],
      'ForbiddenModule',
    ],
    ['another pool implementation at runtime: ForbiddenModule', [{ at: 0, runtime: { poolImplementation: 'SimpleDuckDBPool' } }], 'ForbiddenModule'],
    ['another pool implementation in the metrics: ForbiddenModule', [{ at: 0, pool: { poolImplementation: 'SimpleDuckDBPool' } }], 'ForbiddenModule'],
    ['no runtime endpoint (upstream Arc) and no scan: Healthy', [{ at: 0, runtime: null }], 'Healthy'],
  ])('%s', (_name, steps, expected) => {
    expect(last(run(steps))).toBe(expected);
  });

  it('counts every canary that finished since the last observation, in order', () => {
    let state = initialState(0);
    state = evaluate(state, { ...observation({ at: 0 }), canaries: [canaryOk, deadline, deadline] }, T, globs).state;
    expect(state.canaryStreak).toBe(2);
    expect(state.verdict?.reason).toBe('PoolExhausted');
    state = evaluate(state, { ...observation({ at: 5 }), canaries: [deadline, canaryOk] }, T, globs).state;
    expect(state.canaryStreak).toBe(0);
  });

  it('is silent about what upstream Arc does not report: no timeout counter, no oldest wait', () => {
    const { state } = run([{ at: 0, pool: { source: 'query-pool', oldestWaitMs: undefined, totalQueriesTimeout: undefined } }]);
    const checks = assess(state, 0, T, globs);
    expect(checks.pendingTimeouts.status).toBe('unknown');
    expect(state.verdict?.reason).toBe('Healthy');
  });
});

describe('checks: precedence names the root cause first', () => {
  it('orders the reasons as documented', () => {
    expect(PRECEDENCE).toEqual(['forbiddenModule', 'serviceReachable', 'poolCapacity', 'poolExhausted', 'pendingTimeouts']);
  });

  it.each<[string, Step[], PoolHealthReason]>([
    ['forbidden module + exhausted pool', span(0, 15, 5, { pool: saturated, scan: dirtyScan }), 'ForbiddenModule'],
    [
      'capacity lost + exhausted + waiters timing out',
      span(0, 30, 5, { pool: { active: 4, idle: 0, live: 4, queueDepth: 9, oldestWaitMs: 4500, totalQueriesTimeout: 40 } }),
      'PoolCapacityLost',
    ],
    ['exhausted + waiters timing out', span(0, 15, 5, { pool: { ...saturated, oldestWaitMs: 4900 } }), 'PoolExhausted'],
    ['unreachable + (stale) lost capacity', [...span(0, 30, 5, { pool: lostOne }), ...span(35, 50, 5, { pool: null })], 'ServiceUnreachable'],
  ])('%s', (_name, steps, expected) => {
    expect(last(run(steps))).toBe(expected);
  });
});

describe('checks: hysteresis', () => {
  const exhausted = span(0, 15, 5, { pool: saturated });

  it('turns Healthy again only after every check was clear for the recovery time', () => {
    const { reasons } = run([...exhausted, ...span(20, 60, 5, {})]);
    // clear from t=20: still PoolExhausted up to t=45, Healthy from t=50 (20 + 30)
    expect(reasons.slice(exhausted.length)).toEqual([
      'PoolExhausted', // 20
      'PoolExhausted', // 25
      'PoolExhausted', // 30
      'PoolExhausted', // 35
      'PoolExhausted', // 40
      'PoolExhausted', // 45
      'Healthy', // 50
      'Healthy', // 55
      'Healthy', // 60
    ]);
  });

  it('restarts the recovery clock when the problem starts forming again (a pending check is not clear)', () => {
    const { reasons } = run([...exhausted, ...span(20, 40, 5, {}), { at: 45, pool: saturated }, ...span(50, 85, 5, {})]);
    expect(reasons[reasons.length - 1]).toBe('Healthy');
    // without the relapse at t=45 it would be Healthy at t=50; with it, only at t=80
    const at = (t: number): string => reasons[exhausted.length + (t - 20) / 5]!;
    expect(at(50)).toBe('PoolExhausted');
    expect(at(75)).toBe('PoolExhausted');
    expect(at(80)).toBe('Healthy');
  });

  it('switches at once to a different problem while recovering', () => {
    const { reasons } = run([...exhausted, { at: 20 }, { at: 25, scan: dirtyScan }]);
    expect(reasons.slice(-2)).toEqual(['PoolExhausted', 'ForbiddenModule']);
  });

  it('reports a problem immediately even right after turning Healthy', () => {
    const { reasons } = run([...exhausted, ...span(20, 50, 5, {}), { at: 51, scan: dirtyScan }]);
    expect(reasons.slice(-2)).toEqual(['Healthy', 'ForbiddenModule']);
  });

  it('can be tuned: RECOVERY_CLEAR_SECONDS=0 recovers at the first clear observation', () => {
    const { reasons } = run([...exhausted, { at: 20 }], { ...T, recoveryMs: 0 });
    expect(reasons[reasons.length - 1]).toBe('Healthy');
  });
});

describe('checks: verdicts and transitions', () => {
  it('keeps the message and since of a problem while it lasts, and reports one transition per change', () => {
    let state = initialState(0);
    const transitions: string[] = [];
    const verdicts = [];
    for (const step of [{ at: 0 }, ...span(5, 25, 5, { pool: saturated }), ...span(30, 65, 5, {})]) {
      const ev = evaluate(state, observation(step), T, globs);
      state = ev.state;
      if (ev.transition) transitions.push(`${ev.transition.from?.reason ?? 'None'}->${ev.transition.to.reason}`);
      verdicts.push(ev.verdict);
    }
    expect(transitions).toEqual(['None->Healthy', 'Healthy->PoolExhausted', 'PoolExhausted->Healthy']);
    const exhausted = verdicts.filter((v) => v?.reason === 'PoolExhausted');
    expect(new Set(exhausted.map((v) => v?.since))).toEqual(new Set([20_000]));
    expect(new Set(exhausted.map((v) => v?.message)).size).toBe(1);
    expect(exhausted[0]?.message).toMatch(/all connections busy \(5 of 5\) with 3 callers queued for 15\.0s/);
  });

  it('never mutates its inputs', () => {
    const deepFreeze = <T>(o: T): T => {
      if (o !== null && typeof o === 'object') {
        for (const v of Object.values(o)) deepFreeze(v);
        Object.freeze(o);
      }
      return o;
    };
    let state = deepFreeze(initialState(0));
    for (const step of [{ at: 0 }, ...span(5, 20, 5, { pool: saturated, canary: deadline, scan: dirtyScan })]) {
      const ev = evaluate(state, deepFreeze(observation(step)), T, globs);
      state = deepFreeze(ev.state);
    }
    expect(state.verdict?.reason).toBe('ForbiddenModule');
  });

  it('explains each check with figures a person can act on', () => {
    const { state } = run(span(0, 10, 5, { pool: { ...saturated, totalQueriesTimeout: 0 } }));
    const checks = assess(state, 10_000, T, globs);
    expect(checks.poolExhausted).toMatchObject({ status: 'pending', since: 0 });
    expect(checks.poolExhausted.message).toContain('3 callers queued for 10.0s');
    expect(checks.serviceReachable.status).toBe('ok');
    expect(checks.poolCapacity).toMatchObject({ status: 'ok', message: '5 of 5 connections live' });
  });
});
