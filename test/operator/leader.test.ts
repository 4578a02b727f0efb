import { describe, expect, it } from 'vitest';
import { RESOURCES } from '../../operator/src/kube.ts';
import { LeaderElector, microTime } from '../../operator/src/leader.ts';
import type { Lease } from '../../operator/src/leader.ts';
import { FakeClock } from '../support/fake-clock.ts';
import { FakeKube } from './fake-kube.ts';
import { silentLogger } from './fixtures.ts';

const LEASE_MS = 15_000;
const RENEW_MS = 10_000;
const RETRY_MS = 2_000;

interface Candidate {
  elector: LeaderElector;
  log: string[];
}

function candidate(kube: FakeKube, clock: FakeClock, identity: string, podUid?: string): Candidate {
  const log: string[] = [];
  const elector = new LeaderElector({
    client: kube,
    namespace: 'arc-system',
    name: 'arc-operator-leader',
    identity,
    ...(podUid === undefined ? {} : { ownerPod: { name: identity, uid: podUid } }),
    leaseDurationMs: LEASE_MS,
    renewDeadlineMs: RENEW_MS,
    retryPeriodMs: RETRY_MS,
    clock,
    logger: silentLogger,
    random: () => 0.5,
    onStartedLeading: () => log.push('started'),
    onStoppedLeading: () => log.push('stopped'),
  });
  return { elector, log };
}

function lease(kube: FakeKube): Lease | undefined {
  return kube.read(RESOURCES.lease, 'arc-system', 'arc-operator-leader');
}

describe('LeaderElector', () => {
  it('lets exactly one of two candidates lead, and records it in the Lease', async () => {
    const kube = new FakeKube();
    const clock = new FakeClock();
    const a = candidate(kube, clock, 'op-a');
    const b = candidate(kube, clock, 'op-b');
    a.elector.start();
    b.elector.start();
    for (let i = 0; i < 20; i++) {
      await clock.advance(1000);
      expect([a.elector.isLeader, b.elector.isLeader].filter(Boolean)).toHaveLength(1);
    }
    expect(a.elector.isLeader).toBe(true); // started first
    expect(a.log).toEqual(['started']);
    expect(b.log).toEqual([]);
    expect(lease(kube)?.spec).toMatchObject({ holderIdentity: 'op-a', leaseDurationSeconds: 15, leaseTransitions: 0 });
    expect(b.elector.leader).toBe('op-a');
  });

  it('makes the pod that holds the Lease its owner, so that the Lease goes with the last operator pod', async () => {
    const kube = new FakeKube();
    const clock = new FakeClock();
    const a = candidate(kube, clock, 'op-a', 'uid-a');
    const b = candidate(kube, clock, 'op-b', 'uid-b');
    a.elector.start();
    await clock.advance(0);
    b.elector.start();
    await clock.advance(RETRY_MS);
    expect(lease(kube)?.metadata?.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: 'op-a', uid: 'uid-a' }]);
    await a.elector.stop({ release: true });
    await clock.advance(RETRY_MS);
    expect(b.elector.isLeader).toBe(true);
    expect(lease(kube)?.metadata?.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: 'op-b', uid: 'uid-b' }]);
    await b.elector.stop({ release: false });
  });

  it('renews the Lease every retry period while leading', async () => {
    const kube = new FakeKube();
    const clock = new FakeClock();
    const a = candidate(kube, clock, 'op-a');
    a.elector.start();
    await clock.advance(0);
    const first = lease(kube)?.spec?.renewTime;
    await clock.advance(RETRY_MS);
    const second = lease(kube)?.spec?.renewTime;
    expect(first).toBe(microTime(0));
    expect(second).toBe(microTime(RETRY_MS));
    expect(second).toMatch(/^1970-01-01T00:00:02\.000000Z$/);
  });

  it('takes over from a crashed leader only once the lease has run out', async () => {
    const kube = new FakeKube();
    const clock = new FakeClock();
    const a = candidate(kube, clock, 'op-a');
    const b = candidate(kube, clock, 'op-b');
    a.elector.start();
    await clock.advance(0);
    b.elector.start();
    await clock.advance(5000);
    await a.elector.stop({ release: false }); // a crash: no release, no more renewals
    const crashedAt = clock.now();
    let tookOverAt: number | undefined;
    while (tookOverAt === undefined && clock.now() - crashedAt < 60_000) {
      await clock.advance(100);
      if (b.elector.isLeader) tookOverAt = clock.now();
    }
    expect(tookOverAt).toBeDefined();
    const waited = tookOverAt! - crashedAt;
    // Not before the lease ran out (last renewal at t=4s, seen by b at most one retry later), and
    // at most one retry period after it did.
    expect(waited).toBeGreaterThanOrEqual(LEASE_MS - RETRY_MS * 1.2);
    expect(waited).toBeLessThanOrEqual(LEASE_MS + 2 * RETRY_MS * 1.2);
    expect(lease(kube)?.spec).toMatchObject({ holderIdentity: 'op-b', leaseTransitions: 1 });
  });

  it('hands over at once when the leader releases the Lease on shutdown', async () => {
    const kube = new FakeKube();
    const clock = new FakeClock();
    const a = candidate(kube, clock, 'op-a');
    const b = candidate(kube, clock, 'op-b');
    a.elector.start();
    await clock.advance(0);
    b.elector.start();
    await clock.advance(5000);
    await a.elector.stop({ release: true });
    expect(a.log).toEqual(['started', 'stopped']);
    expect(lease(kube)?.spec?.holderIdentity).toBeNull();
    await clock.advance(RETRY_MS * 1.2 + 1);
    expect(b.elector.isLeader).toBe(true);
  });

  it('stops acting within the renew deadline when the API server is unreachable, before anyone may take over', async () => {
    const kube = new FakeKube();
    const clock = new FakeClock();
    const a = candidate(kube, clock, 'op-a');
    a.elector.start();
    await clock.advance(0);
    await clock.advance(RETRY_MS); // renewed at t=2s
    kube.down = true;
    await clock.advance(RENEW_MS - 1);
    expect(a.elector.isLeader).toBe(true);
    await clock.advance(1);
    expect(a.elector.isLeader).toBe(false);
    expect(a.log).toEqual(['started', 'stopped']);
    // It stopped at t=12s; the Lease (renewed at 2s, 15s long) is valid until 17s for others.
    expect(clock.now()).toBeLessThan(RETRY_MS + LEASE_MS);
  });

  it('stops at once when it sees another holder in the Lease', async () => {
    const kube = new FakeKube();
    const clock = new FakeClock();
    const a = candidate(kube, clock, 'op-a');
    a.elector.start();
    await clock.advance(0);
    const current = lease(kube)!;
    kube.put(RESOURCES.lease, { ...current, spec: { ...current.spec, holderIdentity: 'intruder', renewTime: microTime(clock.now()) } });
    await clock.advance(RETRY_MS);
    expect(a.elector.isLeader).toBe(false);
    expect(a.log).toEqual(['started', 'stopped']);
  });

  it('becomes leader again when the API server comes back and the lease is free', async () => {
    const kube = new FakeKube();
    const clock = new FakeClock();
    const a = candidate(kube, clock, 'op-a');
    a.elector.start();
    await clock.advance(0);
    kube.down = true;
    await clock.advance(RENEW_MS + RETRY_MS);
    expect(a.elector.isLeader).toBe(false);
    kube.down = false;
    await clock.advance(RETRY_MS * 1.2 + 1);
    expect(a.elector.isLeader).toBe(true);
    expect(a.log).toEqual(['started', 'stopped', 'started']);
  });

  it('never lets two candidates win the same race (the resourceVersion decides)', async () => {
    const kube = new FakeKube();
    const clock = new FakeClock();
    const cs = ['a', 'b', 'c', 'd'].map((id) => candidate(kube, clock, `op-${id}`));
    for (const c of cs) c.elector.start();
    for (let i = 0; i < 30; i++) {
      await clock.advance(500);
      expect(cs.filter((c) => c.elector.isLeader).length).toBeLessThanOrEqual(1);
    }
    expect(cs.filter((c) => c.elector.isLeader)).toHaveLength(1);
  });
});
