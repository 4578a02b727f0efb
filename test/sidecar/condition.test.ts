// The pod-condition writer's rules, with a small in-memory stand-in for the two API calls and a
// manual clock. The real kube-apiserver version is condition.cluster.test.ts.
import { POOL_HEALTHY_CONDITION } from '@arcops/common';
import { ApiException } from '@kubernetes/client-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Verdict } from '../../sidecar/src/checks.ts';
import { ConditionWriter, type PodConditionApi, type PoolCondition } from '../../sidecar/src/condition.ts';
import { FakeClock, flush } from '../support/fake-clock.ts';

const healthy: Verdict = { healthy: true, reason: 'Healthy', message: 'every check passes', since: 0 };
const exhausted: Verdict = { healthy: false, reason: 'PoolExhausted', message: 'all connections busy', since: 0 };
const lost: Verdict = { healthy: false, reason: 'PoolCapacityLost', message: 'only 1 of 2 live', since: 0 };

/** The pod's condition as an API server would keep it, with failures to inject. */
class FakePod implements PodConditionApi {
  readonly target = 'ns/pod-0';
  condition: PoolCondition | undefined;
  reads = 0;
  patches: PoolCondition[] = [];
  failures: Error[] = [];

  async read(): Promise<PoolCondition | undefined> {
    this.reads++;
    const f = this.failures.shift();
    if (f !== undefined) throw f;
    return this.condition;
  }

  async patch(c: PoolCondition): Promise<void> {
    const f = this.failures.shift();
    if (f !== undefined) throw f;
    this.patches.push(c);
    this.condition = { ...c, lastTransitionTime: c.lastTransitionTime.replace(/\.\d{3}Z$/, 'Z') };
  }
}

function writer(pod: FakePod, clock: FakeClock, refreshMs = 300_000): ConditionWriter {
  return new ConditionWriter({ api: pod, clock, logger: pino({ level: 'silent' }), refreshMs, random: () => 0.5 });
}

describe('pod condition writer', () => {
  it('writes the condition once, and not again while status and reason stay the same', async () => {
    const pod = new FakePod();
    const clock = new FakeClock();
    const w = writer(pod, clock);
    w.update(healthy);
    await w.idle();
    expect(pod.patches).toEqual([
      {
        type: POOL_HEALTHY_CONDITION,
        status: 'True',
        reason: 'Healthy',
        message: 'every check passes',
        lastTransitionTime: '1970-01-01T00:00:00.000Z',
        lastProbeTime: '1970-01-01T00:00:00.000Z',
      },
    ]);
    for (let i = 0; i < 20; i++) {
      await clock.advance(5000);
      w.update({ ...healthy, message: `every check passes (${i})` });
      await w.idle();
    }
    expect(pod.patches).toHaveLength(1);
    expect(w.snapshot()).toMatchObject({ pod: 'ns/pod-0', writes: 1, failures: 0, lastError: null });
  });

  it('keeps lastTransitionTime when only the reason changes, and moves it when the status flips', async () => {
    const pod = new FakePod();
    const clock = new FakeClock();
    const w = writer(pod, clock);
    w.update(healthy);
    await w.idle();
    await clock.advance(10_000);
    w.update(exhausted);
    await w.idle();
    await clock.advance(10_000);
    w.update(lost);
    await w.idle();
    await clock.advance(10_000);
    w.update(healthy);
    await w.idle();
    expect(pod.patches.map((p) => [p.status, p.reason, p.lastTransitionTime])).toEqual([
      ['True', 'Healthy', '1970-01-01T00:00:00.000Z'],
      ['False', 'PoolExhausted', '1970-01-01T00:00:10.000Z'],
      ['False', 'PoolCapacityLost', '1970-01-01T00:00:10.000Z'],
      ['True', 'Healthy', '1970-01-01T00:00:30.000Z'],
    ]);
  });

  it('does not rewrite a condition the pod already carries (a restarted sidecar container)', async () => {
    const pod = new FakePod();
    pod.condition = { type: POOL_HEALTHY_CONDITION, status: 'True', reason: 'Healthy', message: 'every check passes', lastTransitionTime: '2025-01-01T00:00:00Z' };
    const w = writer(pod, new FakeClock());
    w.update(healthy);
    await w.idle();
    expect(pod.reads).toBe(1);
    expect(pod.patches).toHaveLength(0);
  });

  it('retries conflicts, server errors and network errors with growing delays, without blocking the caller, and then writes the latest verdict', async () => {
    const pod = new FakePod();
    const clock = new FakeClock();
    pod.failures = [
      new ApiException(409, 'Conflict', '{"message":"the object has been modified"}', {}),
      new ApiException(503, 'Unavailable', '{"message":"etcdserver: leader changed"}', {}),
      Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' }) }),
    ];
    const w = writer(pod, clock);
    const t0 = performance.now();
    w.update(exhausted); // returns at once whatever the API does
    expect(performance.now() - t0).toBeLessThan(50);
    await flush();
    expect(w.snapshot()).toMatchObject({ failures: 1, lastError: 'HTTP 409: the object has been modified', nextRetryAt: '1970-01-01T00:00:00.500Z' });
    w.update(lost); // the verdict moves on while the API is down: no backlog, the latest wins
    await clock.advance(500);
    expect(w.snapshot()).toMatchObject({ failures: 2, lastError: 'HTTP 503: etcdserver: leader changed', nextRetryAt: '1970-01-01T00:00:01.500Z' });
    await clock.advance(1000);
    expect(w.snapshot()).toMatchObject({ failures: 3, lastError: 'ECONNREFUSED connect ECONNREFUSED 127.0.0.1:6443' });
    expect(w.snapshot().nextRetryAt).toBe('1970-01-01T00:00:03.500Z');
    await clock.advance(2000);
    await w.idle();
    expect(pod.patches.map((p) => p.reason)).toEqual(['PoolCapacityLost']);
    expect(w.snapshot()).toMatchObject({ writes: 1, lastError: null, nextRetryAt: null });
  });

  it('caps the retry delay, and keeps trying when RBAC forbids the write (it may be granted later)', async () => {
    const pod = new FakePod();
    const clock = new FakeClock();
    const forbidden = (): ApiException<string> =>
      new ApiException(403, 'Forbidden', '{"message":"pods \\"pod-0\\" is forbidden: cannot patch resource \\"pods/status\\""}', {});
    pod.failures = Array.from({ length: 12 }, forbidden);
    const w = new ConditionWriter({ api: pod, clock, logger: pino({ level: 'silent' }), refreshMs: 300_000, random: () => 0.5, maxBackoffMs: 30_000 });
    w.update(exhausted);
    await flush();
    expect(w.snapshot().lastError).toContain('(the sidecar needs get on pods and patch on pods/status in its namespace)');
    const delays: number[] = [];
    for (let retry = w.snapshot().nextRetryAt; retry !== null; retry = w.snapshot().nextRetryAt) {
      const wait = Date.parse(retry) - clock.now();
      delays.push(wait);
      await clock.advance(wait);
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000, 30_000, 30_000]);
    await w.idle();
    expect(pod.patches.map((p) => p.reason)).toEqual(['PoolExhausted']);
  });

  it('re-reads the pod every refresh period and repairs a condition someone else changed', async () => {
    const pod = new FakePod();
    const clock = new FakeClock();
    const w = writer(pod, clock, 60_000);
    w.update(exhausted);
    await w.idle();
    expect(pod.patches).toHaveLength(1);
    await clock.advance(60_000);
    expect(pod.patches).toHaveLength(1); // unchanged on the pod: read, compared, nothing written
    expect(pod.reads).toBe(2);
    pod.condition = { ...pod.condition!, status: 'True', reason: 'Healthy', message: 'edited by hand' };
    await clock.advance(60_000);
    await w.idle();
    expect(pod.patches).toHaveLength(2);
    expect(pod.condition).toMatchObject({ status: 'False', reason: 'PoolExhausted', message: 'all connections busy' });
  });

  it('stops writing once closed', async () => {
    const pod = new FakePod();
    const clock = new FakeClock();
    pod.failures = [new ApiException(500, 'x', '{}', {})];
    const w = writer(pod, clock);
    w.update(exhausted);
    await flush();
    w.close();
    await clock.advance(60_000);
    w.update(healthy);
    await w.idle();
    expect(pod.patches).toHaveLength(0);
    expect(clock.pendingTimers).toBe(0);
  });
});
