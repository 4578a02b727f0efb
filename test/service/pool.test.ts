import { describe, expect, it } from 'vitest';
import { ArcError } from '../../service/src/errors.ts';
import { DuckDBConnectionPool, type Lease } from '../../service/src/pool.ts';
import type { Priority } from '../../service/src/wait-queue.ts';
import { FakeClock, flush } from '../support/fake-clock.ts';
import { type FakeConn, FakeFactory } from '../support/fake-connections.ts';

async function openPool(opts: { size?: number; waitTimeoutMs?: number; maxQueue?: number } = {}) {
  const clock = new FakeClock();
  const factory = new FakeFactory();
  const pool = await DuckDBConnectionPool.open(factory, {
    size: opts.size ?? 1,
    waitTimeoutMs: opts.waitTimeoutMs ?? 5000,
    maxQueue: opts.maxQueue ?? 100,
    clock,
  });
  return { clock, factory, pool };
}

/** Tracks a promise's outcome without awaiting it. */
function watch<T>(p: Promise<T>) {
  const state: { value?: T; error?: unknown; settled: boolean } = { settled: false };
  p.then(
    (v) => Object.assign(state, { value: v, settled: true }),
    (e: unknown) => Object.assign(state, { error: e, settled: true }),
  );
  return state;
}

describe('DuckDBConnectionPool (pure scheduling, fake connections and clock)', () => {
  it('opens exactly `size` connections and lends each to one caller at a time', async () => {
    const { pool, factory } = await openPool({ size: 3 });
    expect(factory.open).toBe(3);
    const leases = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
    expect(new Set(leases.map((l) => l.connection.id)).size).toBe(3);
    expect(pool.getStats()).toMatchObject({ size: 3, active: 3, idle: 0, queueDepth: 0 });
    for (const l of leases) l.release();
    expect(pool.getStats()).toMatchObject({ active: 0, idle: 3 });
  });

  it('fails to open, closing what it made, when a connection cannot be created', async () => {
    const factory = new FakeFactory();
    let calls = 0;
    const create = factory.create.bind(factory);
    factory.create = async () => (++calls === 2 ? Promise.reject(new Error('disk full')) : create());
    await expect(DuckDBConnectionPool.open(factory, { size: 3, waitTimeoutMs: 100, maxQueue: 1 })).rejects.toThrow(/could not open/);
    expect(factory.open).toBe(0);
  });

  it('serves waiters by priority, FIFO within a priority', async () => {
    const { pool } = await openPool();
    const held = await pool.acquire();
    const order: string[] = [];
    const ask = (p: Priority, name: string) =>
      pool.acquire(p).then((l) => {
        order.push(name);
        l.release();
      });
    const all = [ask('low', 'low'), ask('normal', 'normal-1'), ask('high', 'high'), ask('critical', 'critical'), ask('normal', 'normal-2')];
    expect(pool.getStats().queueByPriority).toEqual({ critical: 1, high: 1, normal: 2, low: 1 });
    held.release();
    await Promise.all(all);
    expect(order).toEqual(['critical', 'high', 'normal-1', 'normal-2', 'low']);
  });

  it('times a waiter out at the deadline with the exact 503 text, and never hands it a connection later', async () => {
    const { pool, clock } = await openPool({ waitTimeoutMs: 5000 });
    const held = await pool.acquire();
    const w = watch(pool.acquire());
    await clock.advance(4999);
    expect(w.settled).toBe(false);
    await clock.advance(1);
    expect(w.error).toBeInstanceOf(ArcError);
    expect(w.error).toMatchObject({ statusCode: 503, code: 'ARC_ERR_POOL_TIMEOUT', retryAfterSeconds: 5 });
    expect((w.error as Error).message).toBe('No available connections after 5.0s');
    expect(pool.getStats()).toMatchObject({ totalWaitTimeouts: 1, queueDepth: 0 });
    // The late release after the timeout goes back to the idle set, not to the departed waiter.
    held.release();
    expect(w.value).toBeUndefined();
    expect(pool.getStats()).toMatchObject({ idle: 1, active: 0 });
  });

  it('uses the configured wait timeout in the message, with one decimal', async () => {
    const { pool, clock } = await openPool({ waitTimeoutMs: 250 });
    await pool.acquire();
    const w = watch(pool.acquire());
    await clock.advance(250);
    expect((w.error as Error).message).toBe('No available connections after 0.2s'.replace('0.2', (0.25).toFixed(1)));
  });

  it('a release landing exactly at the deadline (before the timer ran) times the waiter out and serves the next', async () => {
    const { pool, clock } = await openPool({ waitTimeoutMs: 1000 });
    const held = await pool.acquire();
    const first = watch(pool.acquire('normal'));
    clock.set(500);
    const second = watch(pool.acquire('normal'));
    clock.set(1000); // first's deadline; its timer has not fired yet
    held.release();
    await flush();
    expect((first.error as ArcError).code).toBe('ARC_ERR_POOL_TIMEOUT');
    expect(second.value).toBeDefined();
    expect(pool.getStats()).toMatchObject({ totalWaitTimeouts: 1, active: 1, queueDepth: 0 });
    // The timer that fires later finds nothing left to time out.
    await clock.advance(2000);
    expect(pool.getStats().totalWaitTimeouts).toBe(1);
    expect(second.error).toBeUndefined();
  });

  it('a release 1 ms before the deadline serves the waiter, and the timer does not fire on it afterwards', async () => {
    const { pool, clock } = await openPool({ waitTimeoutMs: 1000 });
    const held = await pool.acquire();
    const w = watch(pool.acquire());
    clock.set(999);
    held.release();
    await clock.advance(5000);
    expect(w.value).toBeDefined();
    expect(w.error).toBeUndefined();
    expect(pool.getStats().totalWaitTimeouts).toBe(0);
  });

  it('answers at once when the wait queue is full', async () => {
    const { pool } = await openPool({ maxQueue: 2 });
    await pool.acquire();
    void pool.acquire().catch(() => {});
    void pool.acquire().catch(() => {});
    await expect(pool.acquire()).rejects.toMatchObject({ code: 'ARC_ERR_QUEUE_FULL', statusCode: 503 });
    expect(pool.getStats()).toMatchObject({ queueDepth: 2, totalQueueFull: 1 });
  });

  it('a waiter that aborts leaves the queue and is never served', async () => {
    const { pool } = await openPool();
    const held = await pool.acquire();
    const ac = new AbortController();
    const w = watch(pool.acquire('normal', ac.signal));
    ac.abort(new Error('client left'));
    await flush();
    expect((w.error as Error).message).toBe('client left');
    expect(pool.getStats()).toMatchObject({ queueDepth: 0, totalCancelledWaits: 1 });
    held.release();
    expect(pool.getStats()).toMatchObject({ idle: 1, active: 0 });
  });

  it('ignores a second release of the same lease', async () => {
    const { pool } = await openPool({ size: 2 });
    const a = await pool.acquire();
    a.release();
    const b = await pool.acquire();
    a.release(); // stale: must not free b's connection
    expect(pool.getStats()).toMatchObject({ active: 1, idle: 1 });
    expect(b.released).toBe(false);
  });

  it('replaces a connection after a large result before anyone uses it again', async () => {
    const { pool, factory } = await openPool();
    factory.holdCreates = true;
    const lease = await pool.acquire();
    const old = lease.connection;
    lease.release('recreate');
    expect(old.closed).toBe(true);
    expect(pool.getStats()).toMatchObject({ idle: 0, unavailable: 1 });
    const w = watch(pool.acquire());
    await flush();
    expect(w.settled).toBe(false);
    factory.releaseCreates();
    await flush();
    const next = w.value as Lease<FakeConn>;
    expect(next.connection).not.toBe(old);
    expect(next.connection.closed).toBe(false);
    expect(pool.getStats()).toMatchObject({ totalRecreated: 1, size: 1 });
  });

  it('retries a failed recreation with backoff; the slot stays out of service and says so', async () => {
    const { pool, factory, clock } = await openPool();
    factory.failNextCreates = 3;
    const lease = await pool.acquire();
    lease.release('recreate');
    await flush();
    expect(pool.getStats()).toMatchObject({ unavailable: 1, totalCreateFailures: 1 });
    expect(pool.slotInfo()[0]?.lastError).toBe('cannot connect');
    await clock.advance(50);
    await clock.advance(100);
    expect(pool.getStats().totalCreateFailures).toBe(3);
    const w = watch(pool.acquire());
    await clock.advance(200);
    expect(w.value?.connection.closed).toBe(false);
    expect(pool.getStats()).toMatchObject({ totalRecreated: 1, unavailable: 0, active: 1 });
  });

  it('checks a connection after a failure: a healthy one is reused, a broken one replaced', async () => {
    const { pool, factory } = await openPool();
    const a = await pool.acquire();
    const conn = a.connection;
    a.release('check');
    await flush();
    const b = await pool.acquire();
    expect(b.connection).toBe(conn);
    b.connection.broken = true;
    b.release('check');
    await flush();
    const c = await pool.acquire();
    expect(c.connection).not.toBe(conn);
    expect(conn.closed).toBe(true);
    expect(pool.getStats()).toMatchObject({ totalCheckFailures: 1, totalRecreated: 1 });
    expect(factory.doubleCloses).toBe(0);
  });

  it('close() turns waiters away, waits for lent connections, then closes each exactly once', async () => {
    const { pool, factory } = await openPool({ size: 2 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    const waiter = watch(pool.acquire());
    const closed = watch(pool.close());
    await flush();
    expect((waiter.error as ArcError).code).toBe('ARC_ERR_POOL_CLOSED');
    expect(closed.settled).toBe(false);
    await expect(pool.acquire()).rejects.toMatchObject({ code: 'ARC_ERR_POOL_CLOSED' });
    a.release();
    await flush();
    expect(closed.settled).toBe(false);
    b.release();
    await flush();
    expect(closed.settled).toBe(true);
    expect(factory.open).toBe(0);
    expect(factory.doubleCloses).toBe(0);
  });

  it('keeps its invariants under a random storm of acquires, releases, aborts and timeouts', async () => {
    const { pool, factory, clock } = await openPool({ size: 3, waitTimeoutMs: 100, maxQueue: 20 });
    const held = new Set<Lease<FakeConn>>();
    const inUse = new Set<FakeConn>();
    let served = 0;
    let rejected = 0;
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let step = 0; step < 3000; step++) {
      const r = rand();
      if (r < 0.45) {
        const ac = new AbortController();
        const priorities: Priority[] = ['low', 'normal', 'high', 'critical'];
        pool.acquire(priorities[Math.floor(rand() * 4)], ac.signal).then(
          (l) => {
            expect(l.connection.closed).toBe(false);
            expect(inUse.has(l.connection)).toBe(false);
            inUse.add(l.connection);
            held.add(l);
            served++;
          },
          () => rejected++,
        );
        if (rand() < 0.1) ac.abort();
      } else if (r < 0.85 && held.size > 0) {
        const l = [...held][Math.floor(rand() * held.size)]!;
        held.delete(l);
        inUse.delete(l.connection);
        const action = rand();
        l.release(action < 0.1 ? 'recreate' : action < 0.2 ? 'check' : 'reuse');
      } else {
        await clock.advance(Math.floor(rand() * 60));
      }
      await flush();
      const s = pool.getStats();
      expect(s.active + s.idle + s.unavailable).toBe(3);
      expect(s.active).toBe(held.size);
      if (s.idle > 0) expect(s.queueDepth).toBe(0);
    }
    for (const l of held) l.release();
    await clock.advance(1000);
    expect(pool.getStats()).toMatchObject({ active: 0, idle: 3, queueDepth: 0 });
    expect(factory.open).toBe(3);
    expect(factory.doubleCloses).toBe(0);
    expect(served).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(10);
  });
});
