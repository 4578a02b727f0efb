import { describe, expect, it } from 'vitest';
import { WorkQueue } from '../../operator/src/queue.ts';
import type { WorkQueueOptions } from '../../operator/src/queue.ts';
import { FakeClock, flush } from '../support/fake-clock.ts';

function makeQueue(clock: FakeClock, over: Partial<WorkQueueOptions> = {}): WorkQueue {
  return new WorkQueue({ clock, baseDelayMs: 100, maxDelayMs: 10_000, qps: 1000, burst: 1000, jitter: 0, ...over });
}

/** Takes every key that is ready now (and marks each done). */
async function drain(q: WorkQueue): Promise<string[]> {
  const keys: string[] = [];
  while (q.length > 0) {
    const k = await q.get();
    if (k === undefined) break;
    keys.push(k);
    q.done(k);
  }
  return keys;
}

describe('WorkQueue', () => {
  it('hands out a key once however often it was added while waiting', async () => {
    const q = makeQueue(new FakeClock());
    q.add('ns/a');
    q.add('ns/b');
    q.add('ns/a');
    q.add('ns/a');
    expect(await drain(q)).toEqual(['ns/a', 'ns/b']);
  });

  it('never gives one key to two workers; a key added while processed runs again afterwards', async () => {
    const q = makeQueue(new FakeClock());
    q.add('ns/a');
    const first = await q.get();
    q.add('ns/a'); // a watch event arrives while the key is being reconciled
    expect(q.length).toBe(0); // a second worker gets nothing for it
    let second: string | undefined;
    const waiting = q.get().then((k) => (second = k));
    await flush();
    expect(second).toBeUndefined();
    q.done(first!);
    await waiting;
    expect(second).toBe('ns/a');
  });

  it('wakes a waiting worker when a key arrives', async () => {
    const q = makeQueue(new FakeClock());
    const next = q.get();
    q.add('ns/x');
    expect(await next).toBe('ns/x');
  });

  it('retries a failing key after exponentially growing delays, capped', () => {
    const q = makeQueue(new FakeClock(), { baseDelayMs: 100, maxDelayMs: 1000 });
    const delays = Array.from({ length: 6 }, () => q.addRateLimited('ns/a'));
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(q.failures('ns/a')).toBe(6);
  });

  it('keeps backoff per key and starts over after forget', () => {
    const q = makeQueue(new FakeClock());
    q.addRateLimited('ns/a');
    q.addRateLimited('ns/a');
    expect(q.addRateLimited('ns/b')).toBe(100);
    q.forget('ns/a');
    expect(q.addRateLimited('ns/a')).toBe(100);
  });

  it.each([
    [0, 400],
    [0.5, 440],
    [0.999, 480],
  ])('adds jitter (random %s) to a 400 ms backoff without passing the cap', (r, expected) => {
    const q = makeQueue(new FakeClock(), { jitter: 0.2, random: () => r, maxDelayMs: 100_000 });
    q.addRateLimited('k');
    q.addRateLimited('k');
    expect(q.addRateLimited('k')).toBe(expected);
    const capped = makeQueue(new FakeClock(), { jitter: 0.2, random: () => 0.999, baseDelayMs: 1000, maxDelayMs: 1000 });
    expect(capped.addRateLimited('k')).toBe(1000);
  });

  it('waits at least what the API server asked (Retry-After), never past the cap, and keeps counting failures', () => {
    const q = makeQueue(new FakeClock(), { baseDelayMs: 100, maxDelayMs: 5000 });
    expect(q.addRateLimited('ns/a', 3000)).toBe(3000); // own backoff 100 ms: the server's 3 s wins
    expect(q.addRateLimited('ns/a', 0)).toBe(200); // no Retry-After: the own backoff goes on growing
    expect(q.addRateLimited('ns/a', 3_600_000)).toBe(5000); // an hour: capped at maxDelayMs
    expect(q.failures('ns/a')).toBe(3);
  });

  it('delays the key until its backoff has passed', async () => {
    const clock = new FakeClock();
    const q = makeQueue(clock);
    q.addRateLimited('ns/a'); // 100 ms
    await clock.advance(99);
    expect(q.length).toBe(0);
    await clock.advance(1);
    expect(await drain(q)).toEqual(['ns/a']);
  });

  it('limits retries of many keys with the global token bucket', () => {
    const clock = new FakeClock();
    const q = makeQueue(clock, { baseDelayMs: 1, qps: 10, burst: 5 });
    const delays = Array.from({ length: 8 }, (_, i) => q.addRateLimited(`ns/k${i}`));
    // 5 from the burst right away (their own 1 ms backoff), then one every 100 ms.
    expect(delays).toEqual([1, 1, 1, 1, 1, 100, 200, 300]);
  });

  it('lets the earlier of two delayed adds win', async () => {
    const clock = new FakeClock();
    const q = makeQueue(clock);
    q.addAfter('ns/a', 5000);
    q.addAfter('ns/a', 1000);
    q.addAfter('ns/a', 3000);
    await clock.advance(1000);
    expect(await drain(q)).toEqual(['ns/a']);
    await clock.advance(10_000);
    expect(q.length).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('drops waiting and delayed keys on clear (leadership lost) but keeps backoff history', async () => {
    const clock = new FakeClock();
    const q = makeQueue(clock);
    q.add('ns/a');
    q.addRateLimited('ns/b');
    const processing = await q.get();
    q.add('ns/a');
    q.clear();
    q.done(processing!);
    await clock.advance(60_000);
    expect(q.length).toBe(0);
    expect(q.failures('ns/b')).toBe(1);
  });

  it('reports its depth', () => {
    const depths: number[] = [];
    const q = makeQueue(new FakeClock(), { onDepth: (d) => depths.push(d) });
    q.add('a');
    q.add('b');
    q.add('a');
    expect(depths).toEqual([1, 2]);
  });

  it('gives refresh workers only refresh keys, and other workers work keys first', async () => {
    const q = makeQueue(new FakeClock());
    for (const k of ['new-1', 'new-2']) q.add(k);
    q.add('existing-a', 'refresh');
    q.add('existing-b', 'refresh');
    expect(await q.get('refresh')).toBe('existing-a');
    expect(await q.get('any')).toBe('new-1');
    expect(await q.get('any')).toBe('new-2');
    expect(await q.get('any')).toBe('existing-b');
    let got: string | undefined;
    void q.get('refresh').then((k) => (got = k));
    q.add('new-3');
    await flush();
    expect(got).toBeUndefined(); // a waiting refresh worker is not handed a creation
    q.add('existing-c', 'refresh');
    await flush();
    expect(got).toBe('existing-c');
  });

  it('moves a key waiting in the work lane up when a refresh asks for it, and hands it out once', async () => {
    const q = makeQueue(new FakeClock());
    for (const k of ['a', 'b', 'c']) q.add(k);
    q.add('c', 'refresh');
    q.add('c', 'work');
    expect(q.length).toBe(3);
    expect(await q.get('refresh')).toBe('c');
    expect(await drain(q)).toEqual(['a', 'b']);
  });

  it('hands a promoted key to an idle refresh worker at once', async () => {
    const q = makeQueue(new FakeClock());
    q.add('busy');
    await q.get('any'); // the only general worker is busy
    q.add('waiting');
    let got: string | undefined;
    void q.get('refresh').then((k) => (got = k));
    await flush();
    expect(got).toBeUndefined();
    q.add('waiting', 'refresh');
    await flush();
    expect(got).toBe('waiting');
    expect(q.length).toBe(0);
  });

  it('runs a key again in the refresh lane when a refresh arrived while it was processed', async () => {
    const q = makeQueue(new FakeClock());
    q.add('a');
    const first = await q.get();
    q.add('a', 'refresh');
    q.add('b');
    q.done(first!);
    expect(await q.get('refresh')).toBe('a');
    expect(await drain(q)).toEqual(['b']);
  });

  it('keeps the refresh lane of a delayed add when a later work add of the same key comes', async () => {
    const clock = new FakeClock();
    const q = makeQueue(clock);
    q.addAfter('r', 1000, 'refresh');
    q.addAfter('r', 5000, 'work');
    await clock.advance(1000);
    expect(await q.get('refresh')).toBe('r');
  });

  it('releases waiting workers with undefined on shutdown and ignores later adds', async () => {
    const q = makeQueue(new FakeClock());
    const waiting = q.get();
    q.shutdown();
    expect(await waiting).toBeUndefined();
    q.add('ns/a');
    expect(await q.get()).toBeUndefined();
  });
});
