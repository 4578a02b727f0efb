// The Reflector (reflector.ts) against the in-memory API: list, watch, resume, re-list on 410,
// backoff, the watchdog, paging, indexes, and a handler that throws.
import { describe, expect, it } from 'vitest';
import { KubeApiError, KubeTransportError } from '../../operator/src/errors.ts';
import { RESOURCES } from '../../operator/src/kube.ts';
import { Reflector } from '../../operator/src/reflector.ts';
import type { ChangeType, ReflectorOptions, RestartReason } from '../../operator/src/reflector.ts';
import type { KubeObject } from '../../operator/src/types.ts';
import { FakeClock, flush } from '../support/fake-clock.ts';
import { FakeKube, waitForAbort } from './fake-kube.ts';
import type { WatchCall } from './fake-kube.ts';
import { silentLogger } from './fixtures.ts';

function deployment(name: string, rv: string, owner = 'demo'): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name,
      namespace: 'team-a',
      resourceVersion: rv,
      ownerReferences: [{ apiVersion: 'arcops.dev/v1alpha1', kind: 'ArcDeployment', name: owner, uid: 'u1', controller: true }],
    },
  };
}

interface Harness {
  kube: FakeKube;
  clock: FakeClock;
  reflector: Reflector;
  changes: string[];
  restarts: RestartReason[];
}

function harness(over: Partial<ReflectorOptions> = {}): Harness {
  const kube = new FakeKube();
  const clock = new FakeClock();
  const changes: string[] = [];
  const restarts: RestartReason[] = [];
  const reflector = new Reflector({
    client: kube,
    resource: RESOURCES.deployment,
    namespace: '',
    clock,
    logger: silentLogger,
    watchTimeoutMs: 60_000,
    silenceGraceMs: 30_000,
    watchdogIntervalMs: 5000,
    retryBaseMs: 1000,
    retryMaxMs: 30_000,
    random: () => 0,
    onChange: (type: ChangeType, obj: KubeObject) => changes.push(`${type}:${obj.metadata?.name}@${obj.metadata?.resourceVersion}`),
    onRestart: (reason) => restarts.push(reason),
    ...over,
  });
  return { kube, clock, reflector, changes, restarts };
}

/** A watch script that delivers `events` then stays open until aborted. */
function delivering(...events: WatchCall['onEvent'] extends (e: infer E) => void ? E[] : never): (call: WatchCall) => Promise<void> {
  return async (call) => {
    for (const e of events) call.onEvent(e);
    return waitForAbort(call.options.signal);
  };
}

describe('Reflector', () => {
  it('skips what a typed decoder would refuse (unknown type, no object or name, wrong field types) and watches on', async () => {
    const h = harness();
    h.kube.listScript = () => [deployment('a', '1')];
    const bad = (extra: Record<string, unknown>): KubeObject => ({ ...deployment('bad', '7'), ...extra });
    const odd = [
      { type: 'SURPRISE', object: deployment('x', '2') },
      { type: 'ADDED' },
      { type: 'ADDED', object: null },
      { type: 'MODIFIED', object: { apiVersion: 'apps/v1', kind: 'Deployment' } },
      { type: 'ADDED', object: { ...deployment('', '3'), metadata: { namespace: 'team-a' } } },
      { type: 'ADDED', object: bad({ spec: 'three replicas' }) },
      { type: 'ADDED', object: bad({ status: { conditions: { type: 'Available' } } }) },
      { type: 'ADDED', object: bad({ status: { conditions: [null] } }) },
      { type: 'ADDED', object: bad({ spec: { template: {}, containers: 'arc' } }) },
      { type: 'ADDED', object: { ...deployment('bad', '8'), metadata: { name: 'bad', namespace: 'team-a', labels: { n: 1 } } } },
    ] as unknown as Parameters<WatchCall['onEvent']>[0][];
    h.kube.watchScript = delivering(...odd, { type: 'MODIFIED', object: deployment('a', '9') });
    h.reflector.start();
    await flush();
    expect(h.changes).toEqual(['add:a@1', 'update:a@9']);
    expect(h.reflector.list().map((o) => o.metadata?.name)).toEqual(['a']);
    expect(h.restarts).toEqual([]);
    await h.reflector.stop();
  });

  it('lists, then applies watch events to its cache and reports each change', async () => {
    const h = harness();
    h.kube.listScript = () => [deployment('a', '1'), deployment('b', '2')];
    h.kube.watchScript = delivering(
      { type: 'MODIFIED', object: deployment('a', '3') },
      { type: 'ADDED', object: deployment('c', '4') },
      { type: 'DELETED', object: deployment('b', '5') },
      { type: 'BOOKMARK', object: { kind: 'Deployment', metadata: { resourceVersion: '9' } } },
    );
    h.reflector.start();
    await flush();
    expect(h.changes).toEqual(['add:a@1', 'add:b@2', 'update:a@3', 'add:c@4', 'delete:b@5']);
    expect(h.reflector.hasSynced).toBe(true);
    expect(h.reflector.list().map((o) => o.metadata?.name).sort()).toEqual(['a', 'c']);
    expect(h.reflector.get('team-a', 'a')?.metadata?.resourceVersion).toBe('3');
    await h.reflector.stop();
  });

  it('skips a listed object a typed decoder would refuse, and keeps the rest', async () => {
    const h = harness();
    h.kube.listScript = () => [deployment('a', '1'), { ...deployment('bad', '2'), status: { conditions: 'Available' } }, deployment('c', '3')];
    h.kube.watchScript = delivering();
    h.reflector.start();
    await flush();
    expect(h.changes).toEqual(['add:a@1', 'add:c@3']);
    expect(h.reflector.hasSynced).toBe(true);
    await h.reflector.stop();
  });

  it('keeps an index current through adds, relabels, deletes and relists', async () => {
    const labelled = (name: string, rv: string, team: string): KubeObject => ({ ...deployment(name, rv), metadata: { ...deployment(name, rv).metadata, labels: { team } } });
    const h = harness({ indexBy: (o) => o.metadata?.labels?.['team'] });
    h.kube.listScript = () => [labelled('a', '1', 'red'), labelled('b', '2', 'red'), labelled('c', '3', 'blue')];
    let deliver: ((e: Parameters<WatchCall['onEvent']>[0]) => void) | undefined;
    h.kube.watchScript = (call) => {
      deliver = call.onEvent;
      return waitForAbort(call.options.signal);
    };
    h.reflector.start();
    await flush();
    const names = (team: string): string[] => h.reflector.byIndex(team).map((o) => o.metadata?.name ?? '').sort();
    expect(names('red')).toEqual(['a', 'b']);
    expect(names('blue')).toEqual(['c']);
    deliver!({ type: 'MODIFIED', object: labelled('b', '4', 'blue') });
    deliver!({ type: 'DELETED', object: labelled('a', '5', 'red') });
    deliver!({ type: 'ADDED', object: deployment('d', '6') }); // no label: in no bucket
    expect(names('red')).toEqual([]);
    expect(names('blue')).toEqual(['b', 'c']);
    expect(h.reflector.list()).toHaveLength(3);
    await h.reflector.stop();
  });

  it('lists in pages, trims each page as it comes, and reports the whole list once', async () => {
    const trimmed: string[] = [];
    const h = harness({
      listPageSize: 2,
      transform: (o) => {
        trimmed.push(o.metadata?.name ?? '');
        return { ...o, spec: undefined };
      },
    });
    h.kube.listScript = () => ['a', 'b', 'c', 'd', 'e'].map((n, i) => ({ ...deployment(n, String(i + 1)), spec: { replicas: 3 } }));
    h.kube.watchScript = delivering();
    h.reflector.start();
    await flush();
    expect(h.kube.calls.filter((c) => c.method === 'list')).toHaveLength(3);
    expect(trimmed).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(h.changes).toEqual(['add:a@1', 'add:b@2', 'add:c@3', 'add:d@4', 'add:e@5']);
    expect(h.reflector.list().every((o) => o.spec === undefined)).toBe(true);
    expect(h.reflector.hasSynced).toBe(true);
    await h.reflector.stop();
  });

  it('resumes a watch the server ended from the last resourceVersion, without listing again', async () => {
    const h = harness();
    h.kube.listScript = () => [deployment('a', '1')];
    let n = 0;
    h.kube.watchScript = async (call) => {
      n++;
      if (n === 1) {
        call.onEvent({ type: 'MODIFIED', object: deployment('a', '7') });
        return; // the server closed the watch (timeoutSeconds)
      }
      return waitForAbort(call.options.signal);
    };
    h.reflector.start();
    await flush();
    // The first watch starts at the list's resourceVersion, the second where the first ended.
    expect(h.kube.watches.map((w) => w.options.resourceVersion)).toEqual(['0', '7']);
    expect(h.kube.calls.filter((c) => c.method === 'list')).toHaveLength(1);
    expect(h.restarts).toEqual([]);
    await h.reflector.stop();
  });

  it('lists again when the resourceVersion expired (410) and reports what was deleted meanwhile', async () => {
    const h = harness();
    let listed = 0;
    h.kube.listScript = () => (++listed === 1 ? [deployment('a', '1'), deployment('b', '2')] : [deployment('a', '1')]);
    let n = 0;
    h.kube.watchScript = async (call) => {
      if (++n === 1) throw new KubeApiError(410, 'Expired', 'too old resource version: 2 (40)', { method: 'WATCH', path: '/apis/apps/v1/deployments' });
      return waitForAbort(call.options.signal);
    };
    h.reflector.start();
    await flush();
    expect(h.restarts).toEqual(['expired']);
    expect(h.changes).toEqual(['add:a@1', 'add:b@2', 'delete:b@2']);
    await h.reflector.stop();
  });

  it('retries a failed watch with growing delays and never gives up', async () => {
    const h = harness();
    h.kube.listScript = () => [];
    h.kube.watchScript = async () => {
      throw new KubeTransportError('connect ECONNREFUSED 127.0.0.1:26443');
    };
    h.reflector.start();
    await flush();
    expect(h.kube.watches).toHaveLength(1);
    await h.clock.advance(1000);
    expect(h.kube.watches).toHaveLength(2);
    await h.clock.advance(1999);
    expect(h.kube.watches).toHaveLength(2); // second delay is 2 s
    await h.clock.advance(1);
    expect(h.kube.watches).toHaveLength(3);
    await h.clock.advance(120_000);
    expect(h.restarts.length).toBeGreaterThanOrEqual(7);
    expect(h.restarts.every((r) => r === 'error')).toBe(true);
    // The API server is back: the next attempt sticks.
    h.kube.watchScript = (call) => waitForAbort(call.options.signal);
    await h.clock.advance(30_000);
    const count = h.kube.watches.length;
    await h.clock.advance(60_000);
    expect(h.kube.watches).toHaveLength(count);
    await h.reflector.stop();
  });

  it('waits as long as a 429 asks (Retry-After) before it watches again', async () => {
    const h = harness();
    h.kube.listScript = () => [];
    h.kube.watchScript = async () => {
      throw new KubeApiError(429, 'TooManyRequests', 'too many requests', { method: 'GET', path: '/api/v1/pods' }, { retryAfterSeconds: 7 });
    };
    h.reflector.start();
    await flush();
    expect(h.kube.watches).toHaveLength(1);
    await h.clock.advance(6999); // its own backoff would be 1 s
    expect(h.kube.watches).toHaveLength(1);
    await h.clock.advance(1);
    expect(h.kube.watches).toHaveLength(2);
    await h.reflector.stop();
  });

  it('keeps retrying when even the list fails, and fills the cache once it works', async () => {
    const h = harness();
    h.kube.down = true;
    h.reflector.start();
    await flush();
    await h.clock.advance(10_000);
    expect(h.reflector.hasSynced).toBe(false);
    h.kube.down = false;
    h.kube.listScript = () => [deployment('a', '1')];
    await h.clock.advance(30_000);
    expect(h.reflector.hasSynced).toBe(true);
    expect(h.changes).toEqual(['add:a@1']);
    await h.reflector.stop();
  });

  it('aborts and restarts a watch that went silent past its timeout', async () => {
    const h = harness();
    h.kube.listScript = () => [];
    h.reflector.start(); // the default script: an open connection that never says anything
    await flush();
    expect(h.kube.watches).toHaveLength(1);
    expect(h.kube.watches[0]!.options.timeoutSeconds).toBe(60);
    await h.clock.advance(60_000 + 30_000 - 5000);
    expect(h.kube.watches).toHaveLength(1);
    await h.clock.advance(10_000);
    expect(h.restarts).toEqual(['silent']);
    expect(h.kube.watches).toHaveLength(2);
    expect(h.kube.watches[0]!.options.signal?.aborted).toBe(true);
    await h.reflector.stop();
  });

  it('does not call a watch silent while events keep arriving', async () => {
    const h = harness();
    h.kube.listScript = () => [];
    let call: WatchCall | undefined;
    h.kube.watchScript = (c) => {
      call = c;
      return waitForAbort(c.options.signal);
    };
    h.reflector.start();
    await flush();
    for (let i = 0; i < 10; i++) {
      await h.clock.advance(50_000);
      call?.onEvent({ type: 'BOOKMARK', object: { kind: 'Deployment', metadata: { resourceVersion: String(10 + i) } } });
    }
    expect(h.restarts).toEqual([]);
    await h.reflector.stop();
  });

  it('keeps watching when an event handler throws', async () => {
    let calls = 0;
    const h = harness({
      onChange: () => {
        calls++;
        throw new Error('handler bug');
      },
    });
    h.kube.listScript = () => [deployment('a', '1')];
    h.kube.watchScript = delivering({ type: 'ADDED', object: deployment('b', '2') }, { type: 'ADDED', object: deployment('c', '3') });
    h.reflector.start();
    await flush();
    expect(calls).toBe(3);
    expect(h.reflector.list()).toHaveLength(3);
    expect(h.restarts).toEqual([]);
    await h.reflector.stop();
  });

  it('stops for good on stop()', async () => {
    const h = harness();
    h.kube.listScript = () => [];
    h.reflector.start();
    await flush();
    await h.reflector.stop();
    await h.clock.advance(600_000);
    expect(h.kube.watches).toHaveLength(1);
    expect(h.clock.pendingTimers).toBe(0);
  });
});
