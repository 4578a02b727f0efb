import { describe, expect, it } from 'vitest';
import { WaitQueue, type Waiter } from '../../service/src/wait-queue.ts';
import type { Priority } from '../../service/src/wait-queue.ts';

function waiter(priority: Priority, at: number, timeout = 100): Waiter<string> {
  return { priority, enqueuedAt: at, deadline: at + timeout, waiting: true, resolve: () => {}, reject: () => {} };
}

describe('WaitQueue', () => {
  it('serves by priority then arrival, skipping waiters that left', () => {
    const q = new WaitQueue<string>();
    const ws = [waiter('low', 0), waiter('normal', 1), waiter('critical', 2), waiter('normal', 3), waiter('high', 4)];
    for (const w of ws) q.push(w);
    q.leave(ws[1]!);
    expect(q.size).toBe(4);
    expect([q.next(), q.next(), q.next(), q.next(), q.next()]).toEqual([ws[2], ws[4], ws[3], ws[0], undefined]);
    expect(q.size).toBe(0);
  });

  it('expires exactly the waiters whose deadline passed and reports the next deadline and the oldest', () => {
    const q = new WaitQueue<string>();
    const a = waiter('low', 0);
    const b = waiter('critical', 50);
    const c = waiter('low', 60);
    [a, b, c].forEach((w) => q.push(w));
    expect(q.earliestDeadline()).toBe(100);
    expect(q.oldestEnqueuedAt()).toBe(0);
    expect(q.expire(150)).toEqual([b, a]);
    expect(q.size).toBe(1);
    expect(q.earliestDeadline()).toBe(160);
    expect(q.sizeOf('low')).toBe(1);
  });

  it('stays correct across many pushes and shifts (compaction)', () => {
    const q = new WaitQueue<string>();
    for (let i = 0; i < 10_000; i++) {
      q.push(waiter('normal', i));
      if (i % 3 === 0) q.next();
    }
    let n = 0;
    let last = -1;
    for (let w = q.next(); w !== undefined; w = q.next()) {
      expect(w.enqueuedAt).toBeGreaterThan(last);
      last = w.enqueuedAt;
      n++;
    }
    expect(n).toBe(10_000 - 3334);
  });
});
