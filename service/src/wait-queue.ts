export const PRIORITIES = ['critical', 'high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

export function isPriority(value: unknown): value is Priority {
  return typeof value === 'string' && (PRIORITIES as readonly string[]).includes(value);
}

export interface Waiter<T> {
  readonly priority: Priority;
  readonly enqueuedAt: number;
  readonly deadline: number;
  /** False once the waiter left the queue (served, timed out or cancelled). */
  waiting: boolean;
  resolve(value: T): void;
  reject(err: unknown): void;
}

/** A FIFO of waiters; entries that left early are skipped lazily, so removal is O(1). */
class Fifo<T> {
  private items: Array<Waiter<T> | undefined> = [];
  private head = 0;

  push(w: Waiter<T>): void {
    this.items.push(w);
  }

  /** The first waiter still waiting, dropping the ones that left. */
  peek(): Waiter<T> | undefined {
    while (this.head < this.items.length) {
      const w = this.items[this.head];
      if (w !== undefined && w.waiting) return w;
      this.items[this.head] = undefined;
      this.head++;
    }
    this.compact();
    return undefined;
  }

  shift(): Waiter<T> | undefined {
    const w = this.peek();
    if (w !== undefined) {
      this.items[this.head] = undefined;
      this.head++;
      if (this.head > 1024 && this.head * 2 > this.items.length) this.compact();
    }
    return w;
  }

  private compact(): void {
    if (this.head === 0) return;
    this.items = this.items.slice(this.head);
    this.head = 0;
  }
}

/**
 * Waiters by priority (critical first), FIFO within a priority. All waiters share one wait
 * timeout, so each FIFO is ordered by deadline too and one timer on the earliest head suffices.
 */
export class WaitQueue<T> {
  private readonly fifos = PRIORITIES.map(() => new Fifo<T>());
  private readonly counts = [0, 0, 0, 0];
  private total = 0;

  get size(): number {
    return this.total;
  }

  sizeOf(priority: Priority): number {
    return this.counts[PRIORITIES.indexOf(priority)] ?? 0;
  }

  push(w: Waiter<T>): void {
    const i = PRIORITIES.indexOf(w.priority);
    this.fifos[i]!.push(w);
    this.counts[i]!++;
    this.total++;
  }

  /** Marks a waiter as gone (served, timed out or cancelled elsewhere); idempotent. */
  leave(w: Waiter<T>): boolean {
    if (!w.waiting) return false;
    w.waiting = false;
    this.counts[PRIORITIES.indexOf(w.priority)]!--;
    this.total--;
    return true;
  }

  /** Removes and returns the next waiter to serve. */
  next(): Waiter<T> | undefined {
    for (const fifo of this.fifos) {
      const w = fifo.shift();
      if (w !== undefined) {
        this.leave(w);
        return w;
      }
    }
    return undefined;
  }

  /** Removes and returns every waiter whose deadline is at or before `now`. */
  expire(now: number): Array<Waiter<T>> {
    const out: Array<Waiter<T>> = [];
    for (const fifo of this.fifos) {
      for (let w = fifo.peek(); w !== undefined && w.deadline <= now; w = fifo.peek()) {
        fifo.shift();
        this.leave(w);
        out.push(w);
      }
    }
    return out;
  }

  /** The earliest deadline among waiters, or undefined when none wait. */
  earliestDeadline(): number | undefined {
    let min: number | undefined;
    for (const fifo of this.fifos) {
      const w = fifo.peek();
      if (w !== undefined && (min === undefined || w.deadline < min)) min = w.deadline;
    }
    return min;
  }

  /** The enqueue time of the oldest waiter, or undefined. */
  oldestEnqueuedAt(): number | undefined {
    let min: number | undefined;
    for (const fifo of this.fifos) {
      const w = fifo.peek();
      if (w !== undefined && (min === undefined || w.enqueuedAt < min)) min = w.enqueuedAt;
    }
    return min;
  }

  drain(): Array<Waiter<T>> {
    const out: Array<Waiter<T>> = [];
    for (let w = this.next(); w !== undefined; w = this.next()) out.push(w);
    return out;
  }
}
