// The remediation planner (operator/src/remediation.ts) with a fixed clock: which pods are
// evicted, what waits and why, storms, image faults and rollback, modes, and the status it keeps.
import { describe, expect, it } from 'vitest';
import { planRemediation, remediationStatus, settleIntents, forbiddenFile, HISTORY_LIMIT } from '../../operator/src/remediation.ts';
import type { RemediationInput } from '../../operator/src/remediation.ts';
import type { ArcDeploymentSpec, ObservedPod, RemediationRecord, RemediationSpec, RemediationState } from '../../operator/src/types.ts';
import { arcDeployment, deepFreeze } from './fixtures.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const HASH = 'cur-hash';
const IMAGE = 'registry.example.com/arc/service:1.4.2';

function ago(seconds: number): string {
  return new Date(NOW.getTime() - seconds * 1000).toISOString().replace('.000Z', 'Z');
}

interface PodOptions {
  /** Seconds the PoolHealthy condition has been False (undefined: True). */
  unhealthyFor?: number;
  reason?: string;
  message?: string;
  ready?: boolean;
  deleting?: boolean;
  hash?: string;
  startedAgo?: number;
  noCondition?: boolean;
}

function p(name: string, o: PodOptions = {}): ObservedPod {
  const unhealthy = o.unhealthyFor !== undefined;
  const conditions = [{ type: 'Ready', status: (o.ready ?? !unhealthy) ? 'True' : 'False' }];
  if (!o.noCondition) {
    conditions.push({
      type: 'arcops.dev/PoolHealthy',
      status: unhealthy ? 'False' : 'True',
      reason: unhealthy ? (o.reason ?? 'PoolExhausted') : 'Healthy',
      ...(o.message === undefined ? {} : { message: o.message }),
      lastTransitionTime: ago(o.unhealthyFor ?? 3600),
    } as (typeof conditions)[number]);
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'team-a',
      uid: `uid-${name}`,
      creationTimestamp: ago(o.startedAgo ?? 7200),
      annotations: { 'arcops.dev/config-hash': o.hash ?? HASH },
      ...(o.deleting ? { deletionTimestamp: ago(1) } : {}),
    },
    spec: { containers: [{ name: 'arc', image: IMAGE }, { name: 'sidecar', image: 'sidecar:1' }] },
    status: { phase: 'Running', startTime: ago(o.startedAgo ?? 7200), conditions },
  };
}

function input(pods: ObservedPod[], remediation: RemediationSpec = {}, more: Partial<RemediationInput> & { spec?: Partial<ArcDeploymentSpec> } = {}): RemediationInput {
  const { spec, ...rest } = more;
  const replicas = spec?.replicas ?? 3;
  return deepFreeze({
    arcd: arcDeployment({ replicas, remediation: { unhealthySeconds: 30, ...remediation }, ...spec }),
    pods,
    templateHash: HASH,
    state: {},
    history: [],
    now: NOW,
    ...rest,
  });
}

const evicted = (i: RemediationInput): string[] => planRemediation(i).evictions.map((e) => e.pod);
const paused = (i: RemediationInput) => planRemediation(i).conditions.find((c) => c.type === 'RemediationPaused');

describe('planRemediation: who is evicted', () => {
  it.each<[string, ObservedPod[], RemediationSpec, string[]]>([
    ['a pod False for unhealthySeconds', [p('a', { unhealthyFor: 30 }), p('b'), p('c')], {}, ['a']],
    ['a pod False for less than unhealthySeconds', [p('a', { unhealthyFor: 29 }), p('b'), p('c')], {}, []],
    ['no condition yet (starting pod)', [p('a', { noCondition: true, ready: false }), p('b'), p('c')], {}, []],
    ['a pod already being deleted', [p('a', { unhealthyFor: 60, deleting: true }), p('b'), p('c')], {}, []],
    ['maxUnavailable 1: the longest unhealthy first, one at a time', [p('a', { unhealthyFor: 40 }), p('b', { unhealthyFor: 90 }), p('c'), p('d'), p('e')], { stormThreshold: 3 }, ['b']],
    ['maxUnavailable 2 lets two go', [p('a', { unhealthyFor: 40 }), p('b', { unhealthyFor: 90 }), p('c'), p('d'), p('e')], { stormThreshold: 3, maxUnavailable: 2 }, ['b', 'a']],
    ['maxUnavailable 40% of 5 = 2', [p('a', { unhealthyFor: 40 }), p('b', { unhealthyFor: 90 }), p('c'), p('d'), p('e')], { stormThreshold: 3, maxUnavailable: '40%' }, ['b', 'a']],
    ['a pod already going uses the only slot', [p('a', { unhealthyFor: 40 }), p('x', { deleting: true }), p('b'), p('c')], {}, []],
    ['a replacement not yet ready uses the only slot', [p('a', { unhealthyFor: 40 }), p('n', { noCondition: true, ready: false }), p('b')], {}, []],
    ['a missing pod uses the only slot', [p('a', { unhealthyFor: 40 }), p('b')], {}, []],
    ['an unhealthy pod below unhealthySeconds does not use a slot', [p('a', { unhealthyFor: 40 }), p('b', { unhealthyFor: 5 }), p('c'), p('d'), p('e')], { stormThreshold: 3 }, ['a']],
  ])('%s', (_name, pods, remediation, want) => {
    expect(evicted(input(pods, remediation, { spec: { replicas: Math.max(3, pods.filter((x) => !x.metadata?.deletionTimestamp).length) } }))).toEqual(want);
  });

  it('counts missing pods against the desired replicas', () => {
    expect(evicted(input([p('a', { unhealthyFor: 40 }), p('b')], {}, { spec: { replicas: 3 } }))).toEqual([]);
    expect(evicted(input([p('a', { unhealthyFor: 40 }), p('b'), p('c')], {}, { spec: { replicas: 3 } }))).toEqual(['a']);
  });

  it('takes pods this process just evicted as going, before the cache shows it', () => {
    const pods = [p('a', { unhealthyFor: 40 }), p('b', { unhealthyFor: 50 }), p('c'), p('d'), p('e')];
    expect(evicted(input(pods, { stormThreshold: 3 }, { spec: { replicas: 5 }, evicting: new Set(['b']) }))).toEqual([]);
  });

  it('says when to look again: the moment a pod becomes a candidate', () => {
    const plan = planRemediation(input([p('a', { unhealthyFor: 12 }), p('b'), p('c')]));
    expect(plan.evictions).toEqual([]);
    expect(plan.requeueAfterMs).toBe(18_000);
  });

  it('reports the due time and reason of an eviction', () => {
    const [e] = planRemediation(input([p('a', { unhealthyFor: 45, reason: 'PendingTimeouts', message: '7 timeouts' }), p('b'), p('c')])).evictions;
    expect(e).toMatchObject({ pod: 'a', uid: 'uid-a', reason: 'PendingTimeouts', dueMs: NOW.getTime() - 15_000 });
    expect(e?.message).toContain('7 timeouts');
  });
});

describe('planRemediation: cooldown and hourly budget', () => {
  const rec = (pod: string, secondsAgo: number, result = 'Evicted'): RemediationRecord => ({ time: ago(secondsAgo), action: 'Evict', pod, reason: 'PoolExhausted', result });

  it.each<[string, RemediationRecord[], number, string[]]>([
    ['evicted 100 s ago, cooldown 300 s: waits', [rec('a', 100)], 300, []],
    ['evicted 301 s ago: may go again', [rec('a', 301)], 300, ['a']],
    ['a Blocked attempt is no cooldown', [rec('a', 10, 'Blocked')], 300, ['a']],
    ['another pod in cooldown does not matter', [rec('z', 10)], 300, ['a']],
    ['cooldown 0', [rec('a', 1)], 0, ['a']],
  ])('%s', (_name, history, cooldownSeconds, want) => {
    expect(evicted(input([p('a', { unhealthyFor: 40 }), p('b'), p('c')], { cooldownSeconds }, { history }))).toEqual(want);
  });

  it('requeues at the end of the cooldown', () => {
    expect(planRemediation(input([p('a', { unhealthyFor: 40 }), p('b'), p('c')], { cooldownSeconds: 300 }, { history: [rec('a', 100)] })).requeueAfterMs).toBe(200_000);
  });

  it.each<[string, string[], number, string[], string | undefined]>([
    ['under the budget', [ago(100)], 2, ['a'], 'Active'],
    ['budget used up within the hour', [ago(100), ago(200)], 2, [], 'RateLimited'],
    ['old evictions leave the window', [ago(3601), ago(4000)], 2, ['a'], 'Active'],
    ['maxPerHour 0 never evicts', [], 0, [], 'RateLimited'],
  ])('%s', (_name, evictionTimes, maxPerHour, want, reason) => {
    const i = input([p('a', { unhealthyFor: 40 }), p('b'), p('c')], { maxPerHour }, { state: { evictionTimes } });
    expect(evicted(i)).toEqual(want);
    expect(paused(i)?.reason).toBe(reason);
  });

  it('drops eviction times older than an hour from the state', () => {
    const plan = planRemediation(input([p('a'), p('b'), p('c')], {}, { state: { evictionTimes: [ago(4000), ago(10)] } }));
    expect(plan.state.evictionTimes).toEqual([ago(10)]);
  });
});

describe('planRemediation: storm guard', () => {
  const three = (n: number): ObservedPod[] => ['a', 'b', 'c'].map((name, i) => (i < n ? p(name, { unhealthyFor: 60 + i }) : p(name)));

  it.each<[string, number, RemediationSpec, boolean]>([
    ['1 of 3 unhealthy, threshold 50% (2)', 1, {}, false],
    ['2 of 3 unhealthy, threshold 50% (2): not more than tolerated', 2, { maxUnavailable: 1 }, false],
    ['3 of 3 unhealthy, threshold 50% (2)', 3, {}, true],
    ['2 of 3 unhealthy, threshold 1', 2, { stormThreshold: 1 }, true],
    ['3 of 3 unhealthy, threshold 100%', 3, { stormThreshold: '100%' }, false],
  ])('%s: storm %s', (_name, n, remediation, storm) => {
    const plan = planRemediation(input(three(n), remediation));
    expect(plan.conditions.find((c) => c.reason === 'Storm') !== undefined).toBe(storm);
    if (storm) {
      expect(plan.evictions).toEqual([]);
      expect(plan.state.stormSince).toBe(ago(0));
      expect(plan.conditions[0]?.message).toContain(`${n} of 3 pods`);
      expect(plan.events.map((e) => e.reason)).toContain('RemediationStorm');
    }
  });

  it('emits the storm Event once, not on every pass', () => {
    const plan = planRemediation(input(three(3), {}, { state: { stormSince: ago(30) } }));
    expect(plan.events).toEqual([]);
    expect(plan.state.stormSince).toBe(ago(30));
  });

  it('holds through the cooldown after the storm clears, then resumes', () => {
    const cleared = planRemediation(input(three(1), { stormCooldownSeconds: 120 }, { state: { stormSince: ago(100) } }));
    expect(cleared.evictions).toEqual([]);
    expect(cleared.state.stormClearedTime).toBe(ago(0));
    expect(cleared.conditions[0]).toMatchObject({ status: 'True', reason: 'StormCooldown' });
    expect(cleared.requeueAfterMs).toBe(120_000);
    expect(cleared.events.map((e) => e.reason)).toEqual(['StormCleared']);

    const cooling = planRemediation(input(three(1), { stormCooldownSeconds: 120 }, { state: { stormSince: ago(200), stormClearedTime: ago(60) } }));
    expect(cooling.evictions).toEqual([]);
    expect(cooling.requeueAfterMs).toBe(60_000);

    const resumed = planRemediation(input(three(1), { stormCooldownSeconds: 120 }, { state: { stormSince: ago(300), stormClearedTime: ago(120) } }));
    expect(resumed.evictions.map((e) => e.pod)).toEqual(['a']);
    expect(resumed.state.stormSince).toBeUndefined();
    expect(resumed.conditions[0]).toMatchObject({ status: 'False', reason: 'Active' });
  });

  it('a storm coming back during the cooldown starts over', () => {
    const plan = planRemediation(input(three(3), {}, { state: { stormSince: ago(300), stormClearedTime: ago(10) } }));
    expect(plan.state.stormClearedTime).toBeUndefined();
    expect(plan.state.stormSince).toBe(ago(300));
    expect(plan.conditions[0]?.reason).toBe('Storm');
  });
});

describe('planRemediation: image faults', () => {
  const forbidden = "forbidden file in the service's tree: /app/api/duckdb_pool_simple.py, /app/api/__pycache__/duckdb_pool_simple.cpython-311.pyc";

  it('a fresh pod of the current template reporting ForbiddenModule: not evicted, Degraded names image and file', () => {
    const plan = planRemediation(input([p('new', { unhealthyFor: 60, reason: 'ForbiddenModule', message: forbidden, startedAgo: 65 }), p('b'), p('c')]));
    expect(plan.evictions).toEqual([]);
    expect(plan.state.imageFault).toMatchObject({ image: IMAGE, file: '/app/api/duckdb_pool_simple.py', pod: 'new' });
    expect(plan.degraded).toMatchObject({ type: 'Degraded', status: 'True', reason: 'ImageFault' });
    expect(plan.degraded?.message).toContain(IMAGE);
    expect(plan.degraded?.message).toContain('/app/api/duckdb_pool_simple.py');
    expect(plan.records).toMatchObject([{ action: 'Skip', result: 'ImageFault', pod: 'new' }]);
    expect(plan.events.map((e) => e.reason)).toEqual(['ImageFault']);
    expect(plan.rollbackImage).toBeUndefined();
  });

  it.each<[string, PodOptions, string[]]>([
    ['an old pod where the file appeared later is evicted', { unhealthyFor: 60, reason: 'ForbiddenModule', message: forbidden, startedAgo: 7200 }, ['x']],
    ['a fresh pod of an older template is evicted', { unhealthyFor: 60, reason: 'ForbiddenModule', message: forbidden, startedAgo: 65, hash: 'old' }, ['x']],
    ['a fresh pod with another reason is evicted', { unhealthyFor: 60, reason: 'PoolExhausted', startedAgo: 65 }, ['x']],
  ])('%s', (_name, o, want) => {
    const plan = planRemediation(input([p('x', o), p('b'), p('c')]));
    expect(plan.evictions.map((e) => e.pod)).toEqual(want);
    expect(plan.state.imageFault).toBeUndefined();
  });

  it('once the image is known faulty, no pod is evicted for ForbiddenModule while spec.image stays', () => {
    const fault = { image: IMAGE, file: '/app/x.py', pod: 'gone', since: ago(600) };
    const plan = planRemediation(input([p('x', { unhealthyFor: 60, reason: 'ForbiddenModule' }), p('b', { unhealthyFor: 60 }), p('c')], { stormThreshold: 2 }, { state: { imageFault: fault } }));
    expect(plan.evictions.map((e) => e.pod)).toEqual(['b']);
    expect(plan.events).toEqual([]);
  });

  it('a new spec.image clears the fault', () => {
    const fault = { image: 'old-image:1', file: '/app/x.py', pod: 'gone', since: ago(600) };
    const plan = planRemediation(input([p('b'), p('c'), p('d')], {}, { state: { imageFault: fault, rolledBackTo: 'older:1' } }));
    expect(plan.state.imageFault).toBeUndefined();
    expect(plan.state.rolledBackTo).toBeUndefined();
    expect(plan.degraded).toBeUndefined();
  });

  it.each<[string, boolean, string | undefined, string | undefined]>([
    ['allowed, with a healthy earlier image: rolls back', true, 'registry.example.com/arc/service:1.4.1', 'registry.example.com/arc/service:1.4.1'],
    ['not allowed', false, 'registry.example.com/arc/service:1.4.1', undefined],
    ['allowed, no earlier healthy image', true, undefined, undefined],
    ['allowed, the healthy image is the faulty one', true, IMAGE, undefined],
  ])('rollback %s', (_name, rollbackOnImageFault, lastHealthyImage, want) => {
    const state: RemediationState = lastHealthyImage === undefined ? {} : { lastHealthyImage };
    const plan = planRemediation(input([p('new', { unhealthyFor: 40, reason: 'ForbiddenModule', message: forbidden, startedAgo: 45 }), p('b'), p('c')], { rollbackOnImageFault }, { state }));
    expect(plan.rollbackImage).toBe(want);
    expect(plan.state.rolledBackTo).toBe(want);
    if (want !== undefined) {
      expect(plan.records.map((r) => r.action)).toEqual(['Skip', 'Rollback']);
      expect(plan.degraded?.message).toContain(`rolled back to ${want}`);
    }
  });

  it('remembers the image that ran healthy everywhere', () => {
    expect(planRemediation(input([p('a'), p('b'), p('c')])).state.lastHealthyImage).toBe(IMAGE);
    expect(planRemediation(input([p('a'), p('b'), p('c', { unhealthyFor: 5 })])).state.lastHealthyImage).toBeUndefined();
    // spec.image just changed; the pods still run (healthy) the image they ran: that one is remembered.
    expect(planRemediation(input([p('a'), p('b'), p('c')], {}, { spec: { image: 'next:2' } })).state.lastHealthyImage).toBe(IMAGE);
  });

  it.each([
    [forbidden, '/app/api/duckdb_pool_simple.py'],
    ['the service has loaded /srv/duckdb_pool_simple.js; forbidden file in the service\'s tree: /srv/x.py', '/srv/x.py'],
    ['the service has loaded /srv/duckdb_pool_simple.js', '/srv/duckdb_pool_simple.js'],
    // As the sidecar writes it in a pod, having found the file through the shared process namespace.
    ["forbidden file in the service's tree: pid 13:/app/service/dist/duckdb_pool_simple.js", '/app/service/dist/duckdb_pool_simple.js'],
    ["forbidden files in the service's tree: pid 7:/app/a/duckdb_pool_simple.py, pid 7:/app/b.py", '/app/a/duckdb_pool_simple.py'],
    [undefined, 'a forbidden module'],
  ])('forbiddenFile(%j) = %s', (message, want) => {
    expect(forbiddenFile(message)).toBe(want);
  });
});

describe('planRemediation: modes', () => {
  const pods = (): ObservedPod[] => [p('a', { unhealthyFor: 40 }), p('b'), p('c')];

  it.each<[string, RemediationSpec, Partial<ArcDeploymentSpec>, string, 'True' | 'False']>([
    ['Auto', { mode: 'Auto' }, {}, 'Active', 'False'],
    ['DryRun', { mode: 'DryRun' }, {}, 'DryRun', 'False'],
    ['Off', { mode: 'Off' }, {}, 'ModeOff', 'True'],
    ['paused', {}, { paused: true }, 'Paused', 'True'],
  ])('%s', (name, remediation, spec, reason, status) => {
    const plan = planRemediation(input(pods(), remediation, { spec }));
    expect(plan.conditions).toEqual([expect.objectContaining({ type: 'RemediationPaused', status, reason })]);
    expect(plan.evictions.map((e) => e.pod)).toEqual(name === 'Auto' ? ['a'] : []);
    expect(plan.wouldEvict.map((e) => e.pod)).toEqual(name === 'DryRun' ? ['a'] : []);
  });

  it('DryRun reports the intent in history and Events, once per cooldown', () => {
    const plan = planRemediation(input(pods(), { mode: 'DryRun' }));
    expect(plan.records).toMatchObject([{ action: 'Evict', pod: 'a', result: 'DryRun' }]);
    expect(plan.events).toMatchObject([{ reason: 'WouldEvict', pod: 'a' }]);
    const again = planRemediation(input(pods(), { mode: 'DryRun' }, { history: plan.records }));
    expect(again.wouldEvict).toEqual([]);
  });
});

describe('remediationStatus', () => {
  const eviction = { pod: 'a', uid: 'u', reason: 'PoolExhausted', message: 'exhausted', dueMs: 0 };
  const empty = planRemediation(input([p('a'), p('b'), p('c')]));

  it('appends results, counts successful evictions in the window, and stamps lastRemediationTime', () => {
    const out = remediationStatus({}, empty, [{ eviction, result: 'Evicted' }], NOW);
    expect(out.remediations).toMatchObject([{ action: 'Evict', pod: 'a', result: 'Evicted', time: ago(0) }]);
    expect(out.remediationState.evictionTimes).toEqual([ago(0)]);
    expect(out.lastRemediationTime).toBe(ago(0));
  });

  it('writes a repeated PDB refusal once', () => {
    const first = remediationStatus({}, empty, [{ eviction, result: 'Blocked' }], NOW);
    const second = remediationStatus(first, empty, [{ eviction, result: 'Blocked' }], new Date(NOW.getTime() + 5000));
    expect(second.remediations).toHaveLength(1);
    expect(second.remediationState.evictionTimes ?? []).toEqual([]);
  });

  it(`keeps the last ${HISTORY_LIMIT} entries`, () => {
    const long = Array.from({ length: HISTORY_LIMIT }, (_, i) => ({ time: ago(1000 - i), action: 'Evict', pod: `p${i}`, result: 'Evicted' }));
    const out = remediationStatus({ remediations: long }, empty, [{ eviction, result: 'Evicted' }], NOW);
    expect(out.remediations).toHaveLength(HISTORY_LIMIT);
    expect(out.remediations?.at(-1)?.pod).toBe('a');
    expect(out.remediations?.[0]?.pod).toBe('p1');
  });

  it('leaves lastRemediationTime alone when nothing happened', () => {
    expect(remediationStatus({ lastRemediationTime: ago(50) }, empty, [], NOW).lastRemediationTime).toBe(ago(50));
  });
});

describe('settleIntents', () => {
  const intent = (pod: string, secondsAgo: number): RemediationRecord => ({ time: ago(secondsAgo), action: 'Evict', pod, reason: 'PoolExhausted', result: 'Evicting', message: 'pool unhealthy' });
  const GRACE = 30_000;

  it('leaves a history without Evicting records as it is', () => {
    const previous = { remediations: [{ time: ago(100), action: 'Evict', pod: 'a', result: 'Evicted' }], remediationState: { evictionTimes: [ago(100)] } };
    const out = settleIntents(previous, [p('b')], NOW, GRACE);
    expect(out.previous).toBe(previous);
    expect(out.going.size).toBe(0);
  });

  it('settles Evicted when the pod is going or gone, keeping its time in the budget', () => {
    const out = settleIntents({ remediations: [intent('a', 5), intent('b', 100)], remediationState: { evictionTimes: [ago(100), ago(5)] } }, [p('a', { deleting: true })], NOW, GRACE);
    expect(out.previous.remediations).toMatchObject([{ pod: 'a', result: 'Evicted' }, { pod: 'b', result: 'Evicted' }]);
    expect(out.previous.remediationState?.evictionTimes).toEqual([ago(100), ago(5)]);
    expect(out.going.size).toBe(0);
  });

  it('takes a live pod as going within the grace, then settles Failed and gives its time back', () => {
    const previous = { remediations: [intent('a', 10)], remediationState: { evictionTimes: [ago(10)] } };
    const early = settleIntents(previous, [p('a', { unhealthyFor: 60 })], NOW, GRACE);
    expect([...early.going]).toEqual(['a']);
    expect(early.recheckAfterMs).toBe(20_000);
    expect(early.previous.remediations).toMatchObject([{ result: 'Evicting' }]);
    const late = settleIntents(previous, [p('a', { unhealthyFor: 60 })], new Date(NOW.getTime() + 20_000), GRACE);
    expect(late.going.size).toBe(0);
    expect(late.previous.remediations).toMatchObject([{ pod: 'a', result: 'Failed' }]);
    expect(late.previous.remediations?.[0]?.message).toMatch(/^not evicted: .*pool unhealthy$/);
    expect(late.previous.remediationState?.evictionTimes).toEqual([]);
  });
});
