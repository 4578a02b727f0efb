// The remediation planner (operator/src/remediation.ts) with a fixed clock: which pods are
// evicted, what waits and why, storms, image faults and rollback, modes, and the state it keeps.
import { describe, expect, it } from 'vitest';
import { forbiddenFile, isStorm, planRemediation } from '../../operator/src/remediation.ts';
import type { RemediationInput } from '../../operator/src/remediation.ts';
import type { ArcDeploymentSpec, ObservedPod, RemediationRecord, RemediationSpec, RemediationState } from '../../operator/src/types.ts';
import { IMAGE, NOW, ago, input, p } from './remediation-fixtures.ts';
import type { PodOptions } from './remediation-fixtures.ts';

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
    ['maxUnavailable 90% of 3 leaves one pod serving', [p('a', { unhealthyFor: 40 }), p('b', { unhealthyFor: 90 }), p('c', { unhealthyFor: 60 })], { stormThreshold: 3, maxUnavailable: '90%' }, ['b', 'c']],
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

  // ArcRemediationStorm pages on what isStorm reports (arc_operator_storm): over every small
  // ArcDeployment and threshold, a storm is exactly "more unhealthy pods than stormThreshold
  // tolerates". Half the pods (1 of 2, 2 of 4) is no storm with the default 50%.
  const grid = [1, 2, 3, 4, 5, 6].flatMap((replicas) =>
    (['50%', '34%', '100%', 1, 2] as const).flatMap((threshold) => Array.from({ length: replicas + 1 }, (_, unhealthy) => ({ replicas, threshold, unhealthy }))),
  );
  it.each(grid)('$unhealthy of $replicas unhealthy, stormThreshold $threshold: storm iff more than tolerated', ({ replicas, threshold, unhealthy }) => {
    const pods = Array.from({ length: replicas }, (_, i) => (i < unhealthy ? p(`p${i}`, { unhealthyFor: 60 + i }) : p(`p${i}`)));
    const tolerated = typeof threshold === 'number' ? threshold : Math.ceil((Number(threshold.slice(0, -1)) * replicas) / 100);
    const plan = planRemediation(input(pods, { stormThreshold: threshold, maxUnavailable: 1 }, { spec: { replicas } }));
    expect(isStorm(plan)).toBe(unhealthy > tolerated);
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
