// What the operator remembers of remediation between passes (remediation-memory.ts): the status
// it wrote until the cache shows it, the pods it evicted, and when it first saw a condition
// False. Tables of what a pass builds on, with a fake clock.
import { describe, expect, it } from 'vitest';
import { EVICTING_TTL_MS, RemediationMemory, settleIntents, unionTimes, withUnseenRecords } from '../../operator/src/remediation-memory.ts';
import { HISTORY_LIMIT } from '../../operator/src/remediation-status.ts';
import type { ArcDeployment, ArcDeploymentStatus, ObservedPod, RemediationRecord } from '../../operator/src/types.ts';
import { FakeClock } from '../support/fake-clock.ts';
import { arcDeployment } from './fixtures.ts';
import { NOW, ago, p } from './remediation-fixtures.ts';

const T1 = '2026-03-01T12:00:01Z';
const T2 = '2026-03-01T12:00:02Z';
const T3 = '2026-03-01T12:00:03Z';

const rec = (time: string, pod: string, result: string): RemediationRecord => ({ time, action: 'Evict', pod, reason: 'PoolExhausted', result });

function pod(name: string, o: { condition?: 'True' | 'False'; deleting?: boolean } = {}): ObservedPod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'team-a', ...(o.deleting ? { deletionTimestamp: T1 } : {}) },
    status: { phase: 'Running', conditions: o.condition === undefined ? [] : [{ type: 'arcops.dev/PoolHealthy', status: o.condition }] },
  };
}

function arcd(resourceVersion: string, status: ArcDeploymentStatus = {}, uid = 'uid-1'): ArcDeployment {
  const a = arcDeployment();
  return { ...a, metadata: { ...a.metadata, resourceVersion, uid }, status };
}

describe('unionTimes', () => {
  it.each<[string, string[], string[], string[]]>([
    ['nothing and nothing', [], [], []],
    ['one side only', [T2, T1], [], [T1, T2]],
    ['the same time on both sides, once', [T1], [T1], [T1]],
    ['two evictions in one second on one side are both kept', [T1, T1], [T1], [T1, T1]],
    ['times from both sides, sorted', [T3], [T1, T2], [T1, T2, T3]],
  ])('%s', (_name, a, b, expected) => {
    expect(unionTimes(a, b)).toEqual(expected);
  });
});

describe('withUnseenRecords', () => {
  const full = Array.from({ length: HISTORY_LIMIT }, (_, i) => rec(`2026-03-01T11:${String(i + 10).padStart(2, '0')}:00Z`, `old-${i}`, 'Evicted'));
  it.each<[string, ArcDeploymentStatus, ArcDeploymentStatus, { pods: string[]; results: string[]; times: string[] } | undefined]>([
    ['the cache shows everything this process wrote: nothing to add', { remediations: [rec(T1, 'a', 'Evicted')] }, { remediations: [rec(T1, 'a', 'Evicted')] }, undefined],
    [
      'a record the cache does not show yet is added, with its time in the budget',
      { remediations: [rec(T1, 'a', 'Evicted')], remediationState: { evictionTimes: [T1] } },
      { remediations: [rec(T1, 'a', 'Evicted'), rec(T2, 'b', 'Evicted')], remediationState: { evictionTimes: [T1, T2] } },
      { pods: ['a', 'b'], results: ['Evicted', 'Evicted'], times: [T1, T2] },
    ],
    [
      'an outcome settles the Evicting record the cache shows',
      { remediations: [rec(T1, 'a', 'Evicting')], remediationState: { evictionTimes: [T1] } },
      { remediations: [rec(T1, 'a', 'Evicted')], remediationState: { evictionTimes: [T1] } },
      { pods: ['a'], results: ['Evicted'], times: [T1] },
    ],
    [
      'an eviction that was not made gives its time back',
      { remediations: [rec(T1, 'a', 'Evicting')], remediationState: { evictionTimes: [T1] } },
      { remediations: [rec(T1, 'a', 'Failed')], remediationState: { evictionTimes: [] } },
      { pods: ['a'], results: ['Failed'], times: [] },
    ],
    ['a record older than a full history was trimmed, not lost', { remediations: full }, { remediations: [rec('2026-03-01T11:00:00Z', 'z', 'Evicted')] }, undefined],
  ])('%s', (_name, observed, mine, expected) => {
    const merged = withUnseenRecords(observed, mine);
    if (expected === undefined) {
      expect(merged).toBeUndefined();
      return;
    }
    expect(merged?.remediations?.map((r) => r.pod)).toEqual(expected.pods);
    expect(merged?.remediations?.map((r) => r.result)).toEqual(expected.results);
    expect(merged?.remediationState?.evictionTimes).toEqual(expected.times);
  });
});

describe('RemediationMemory.previous', () => {
  const written = { remediations: [rec(T1, 'a', 'Evicted')], remediationState: { evictionTimes: [T1] }, lastRemediationTime: T1 };
  it.each<[string, ArcDeployment, string[]]>([
    ['the object it was written to, unchanged in the cache: what was written', arcd('5'), ['a']],
    ['a newer version that does not show the write: the write added to it', arcd('6', { remediations: [rec(T2, 'b', 'Evicted')] }), ['a', 'b']],
    ['a newer version that shows it: as observed', arcd('6', { remediations: [rec(T1, 'a', 'Evicted')] }), ['a']],
    ['another object of the same name (new uid): as observed', arcd('6', { remediations: [rec(T2, 'b', 'Evicted')] }, 'uid-2'), ['b']],
  ])('%s', (_name, observed, pods) => {
    const memory = new RemediationMemory(new FakeClock());
    memory.wrote('team-a/demo', arcd('5'), written);
    expect(memory.previous('team-a/demo', observed).remediations?.map((r) => r.pod)).toEqual(pods);
  });

  it('builds on the status alone once forgotten', () => {
    const memory = new RemediationMemory(new FakeClock());
    memory.wrote('team-a/demo', arcd('5'), written);
    memory.forget('team-a/demo');
    expect(memory.previous('team-a/demo', arcd('5', {}))).toEqual({});
  });
});

describe('RemediationMemory.evicting', () => {
  it.each<[string, ObservedPod[], number, string[]]>([
    ['an evicted pod the cache still shows live is going', [pod('a')], 1_000, ['a']],
    ['one the cache shows being deleted is no longer remembered', [pod('a', { deleting: true })], 1_000, []],
    ['one the cache no longer shows is no longer remembered', [], 1_000, []],
    [`one still live after ${EVICTING_TTL_MS} ms is taken as live again`, [pod('a')], EVICTING_TTL_MS + 1, []],
  ])('%s', (_name, pods, afterMs, expected) => {
    const clock = new FakeClock();
    const memory = new RemediationMemory(clock);
    memory.evictedNow('team-a/demo', 'a', clock.now());
    clock.set(clock.now() + afterMs);
    expect([...memory.evicting('team-a/demo', pods)]).toEqual(expected);
  });
});

describe('RemediationMemory.falseSinceOf', () => {
  it.each<[string, ObservedPod[], Record<string, number>]>([
    ['a pod whose condition stays False keeps the time it was first seen so', [pod('a', { condition: 'False' })], { a: 0 }],
    ['a pod seen False for the first time starts now', [pod('a', { condition: 'False' }), pod('b', { condition: 'False' })], { a: 0, b: 5_000 }],
    ['a pod that turned True is dropped', [pod('a', { condition: 'True' })], {}],
    ['a pod without the condition is not counted', [pod('a')], {}],
  ])('%s', (_name, later, expected) => {
    const clock = new FakeClock();
    const memory = new RemediationMemory(clock);
    memory.falseSinceOf('team-a/demo', [pod('a', { condition: 'False' })]);
    clock.set(5_000);
    expect(Object.fromEntries(memory.falseSinceOf('team-a/demo', later))).toEqual(expected);
  });

  it('starts again after a True in between', () => {
    const clock = new FakeClock();
    const memory = new RemediationMemory(clock);
    memory.falseSinceOf('team-a/demo', [pod('a', { condition: 'False' })]);
    clock.set(5_000);
    memory.falseSinceOf('team-a/demo', [pod('a', { condition: 'True' })]);
    clock.set(9_000);
    expect(memory.falseSinceOf('team-a/demo', [pod('a', { condition: 'False' })]).get('a')).toBe(9_000);
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
