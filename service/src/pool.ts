import { performance } from 'node:perf_hooks';
import type { Clock } from '@arcops/common';
import { poolClosedError, poolTimeoutError, queueFullError } from './errors.ts';
import { type Priority, WaitQueue, type Waiter } from './wait-queue.ts';

/** How the pool makes, checks and closes connections. `destroy` is only called on idle ones. */
export interface ConnectionFactory<C> {
  create(): Promise<C>;
  validate(conn: C): Promise<boolean>;
  destroy(conn: C): void;
}

export type { Clock } from '@arcops/common';

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error('aborted');
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface PoolOptions {
  size: number;
  /** How long a caller may wait for a connection. */
  waitTimeoutMs: number;
  /** Callers allowed to wait at once; 0 means none may wait. */
  maxQueue: number;
  /** First delay between attempts to recreate a connection; doubles up to `maxRetryDelayMs`. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  clock?: Clock;
  /** Called when a slot's connection could not be recreated (it keeps retrying). */
  onConnectionError?: (slot: number, err: unknown) => void;
}

type SlotState = 'idle' | 'busy' | 'checking' | 'replacing';

interface Slot<C> {
  readonly id: number;
  conn: C | undefined;
  state: SlotState;
  generation: number;
  createdAt: number;
  lastUsedAt: number;
  leasedAt: number;
  queries: number;
  lastError: string | undefined;
  lease: Lease<C> | undefined;
}

/** Why a lease comes back: plain, or with the connection needing a check or a replacement. */
export type ReleaseAction = 'reuse' | 'check' | 'recreate';

/** A connection lent to one caller; release it exactly once (later calls are ignored). */
export class Lease<C> {
  #pool: DuckDBConnectionPool<C> | undefined;
  readonly connection: C;
  readonly slotId: number;
  readonly waitMs: number;

  constructor(pool: DuckDBConnectionPool<C>, slot: Slot<C>, waitMs: number) {
    this.#pool = pool;
    this.connection = slot.conn as C;
    this.slotId = slot.id;
    this.waitMs = waitMs;
  }

  get released(): boolean {
    return this.#pool === undefined;
  }

  release(action: ReleaseAction = 'reuse', error?: string): void {
    const pool = this.#pool;
    if (pool === undefined) return;
    this.#pool = undefined;
    pool.giveBack(this, action, error);
  }
}

export interface PoolStats {
  size: number;
  active: number;
  idle: number;
  unavailable: number;
  queueDepth: number;
  queueByPriority: Record<Priority, number>;
  oldestWaitMs: number;
  totalAcquired: number;
  totalWaitTimeouts: number;
  totalQueueFull: number;
  totalCancelledWaits: number;
  totalRecreated: number;
  totalCreateFailures: number;
  totalCheckFailures: number;
  totalWaitMs: number;
  closed: boolean;
}

export interface SlotInfo {
  id: number;
  state: SlotState;
  generation: number;
  queries: number;
  ageMs: number;
  idleMs: number;
  busyMs: number;
  lastError: string | undefined;
}

/**
 * A fixed-size pool of connections: exactly `size` slots, each holding a live connection or
 * being repaired. Callers wait by priority with one deadline; nobody is ever handed a closed,
 * broken or missing connection, and a caller that timed out is never handed one later.
 */
export class DuckDBConnectionPool<C> {
  static readonly implementation = 'DuckDBConnectionPool';

  readonly size: number;
  readonly waitTimeoutMs: number;
  readonly maxQueue: number;
  private readonly factory: ConnectionFactory<C>;
  private readonly clock: Clock;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly onConnectionError: (slot: number, err: unknown) => void;
  private readonly slots: Array<Slot<C>> = [];
  private readonly idle: Array<Slot<C>> = [];
  private readonly queue = new WaitQueue<Lease<C>>();
  private timer: unknown;
  private timerDeadline = Infinity;
  private closed = false;
  private creating = 0;
  private drainedWaiters: Array<() => void> = [];
  private readonly stats = {
    acquired: 0,
    waitTimeouts: 0,
    queueFull: 0,
    cancelledWaits: 0,
    recreated: 0,
    createFailures: 0,
    checkFailures: 0,
    waitMs: 0,
  };

  private constructor(factory: ConnectionFactory<C>, options: PoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) throw new RangeError('pool size must be >= 1');
    this.size = options.size;
    this.waitTimeoutMs = options.waitTimeoutMs;
    this.maxQueue = options.maxQueue;
    this.factory = factory;
    this.clock = options.clock ?? realClock;
    this.retryDelayMs = options.retryDelayMs ?? 50;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 5000;
    this.onConnectionError = options.onConnectionError ?? (() => {});
  }

  /** Opens every connection up front; fails (closing what was opened) if any cannot be made. */
  static async open<C>(factory: ConnectionFactory<C>, options: PoolOptions): Promise<DuckDBConnectionPool<C>> {
    const pool = new DuckDBConnectionPool(factory, options);
    const made = await Promise.allSettled(Array.from({ length: pool.size }, () => factory.create()));
    const failure = made.find((r) => r.status === 'rejected');
    if (failure !== undefined) {
      for (const r of made) if (r.status === 'fulfilled') factory.destroy(r.value);
      throw new Error('could not open the connection pool', { cause: failure.reason });
    }
    const now = pool.clock.now();
    made.forEach((r, id) => {
      const slot: Slot<C> = {
        id,
        conn: (r as PromiseFulfilledResult<C>).value,
        state: 'idle',
        generation: 1,
        createdAt: now,
        lastUsedAt: now,
        leasedAt: 0,
        queries: 0,
        lastError: undefined,
        lease: undefined,
      };
      pool.slots.push(slot);
      pool.idle.push(slot);
    });
    return pool;
  }

  /**
   * Borrows a connection. Resolves at once when one is idle; otherwise waits in line by
   * priority until one is free, the wait deadline passes (503), or `signal` aborts.
   */
  acquire(priority: Priority = 'normal', signal?: AbortSignal): Promise<Lease<C>> {
    if (this.closed) return Promise.reject(poolClosedError());
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const slot = this.idle.pop();
    if (slot !== undefined) return Promise.resolve(this.lend(slot, 0));
    if (this.queue.size >= this.maxQueue) {
      this.stats.queueFull++;
      return Promise.reject(queueFullError(this.maxQueue));
    }
    return this.wait(priority, signal);
  }

  private wait(priority: Priority, signal: AbortSignal | undefined): Promise<Lease<C>> {
    return new Promise<Lease<C>>((resolve, reject) => {
      const enqueuedAt = this.clock.now();
      const onAbort = (): void => {
        if (this.queue.leave(waiter)) {
          this.stats.cancelledWaits++;
          reject(abortReason(signal));
        }
      };
      const waiter: Waiter<Lease<C>> = {
        priority,
        enqueuedAt,
        deadline: enqueuedAt + this.waitTimeoutMs,
        waiting: true,
        resolve: (lease) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(lease);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
      this.armTimer();
    });
  }

  private lend(slot: Slot<C>, waitMs: number): Lease<C> {
    slot.state = 'busy';
    slot.leasedAt = this.clock.now();
    slot.queries++;
    this.stats.acquired++;
    this.stats.waitMs += waitMs;
    const lease = new Lease(this, slot, waitMs);
    slot.lease = lease;
    return lease;
  }

  /** @internal Called by Lease.release. */
  giveBack(lease: Lease<C>, action: ReleaseAction, error?: string): void {
    const slot = this.slots[lease.slotId];
    if (slot === undefined || slot.lease !== lease) return;
    slot.lease = undefined;
    slot.lastUsedAt = this.clock.now();
    if (error !== undefined) slot.lastError = error;
    if (action === 'recreate') this.replace(slot);
    else if (action === 'check') this.check(slot);
    else this.dispatch(slot);
  }

  /** Hands a ready slot to the next waiter in line, or parks it as idle. */
  private dispatch(slot: Slot<C>): void {
    if (this.closed) {
      slot.state = 'idle';
      this.idle.push(slot);
      this.notifyDrained();
      return;
    }
    const now = this.clock.now();
    for (let w = this.queue.next(); w !== undefined; w = this.queue.next()) {
      if (w.deadline <= now) {
        this.timeOut(w);
        continue;
      }
      w.resolve(this.lend(slot, now - w.enqueuedAt));
      this.armTimer();
      return;
    }
    slot.state = 'idle';
    this.idle.push(slot);
    this.armTimer();
  }

  private check(slot: Slot<C>): void {
    slot.state = 'checking';
    const conn = slot.conn as C;
    this.factory.validate(conn).then(
      (ok) => (ok ? this.dispatch(slot) : this.onCheckFailed(slot)),
      () => this.onCheckFailed(slot),
    );
  }

  private onCheckFailed(slot: Slot<C>): void {
    this.stats.checkFailures++;
    this.replace(slot);
  }

  /** Closes the slot's connection and makes a new one, retrying with backoff; the slot serves nobody meanwhile. */
  private replace(slot: Slot<C>): void {
    slot.state = 'replacing';
    const old = slot.conn;
    slot.conn = undefined;
    if (old !== undefined) {
      try {
        this.factory.destroy(old);
      } catch (err) {
        this.onConnectionError(slot.id, err);
      }
    }
    if (this.closed) {
      this.notifyDrained();
      return;
    }
    this.recreate(slot, this.retryDelayMs);
  }

  private recreate(slot: Slot<C>, nextDelayMs: number): void {
    if (this.closed) {
      this.notifyDrained();
      return;
    }
    this.creating++;
    this.factory.create().then(
      (conn) => {
        this.creating--;
        if (this.closed) {
          this.factory.destroy(conn);
          this.notifyDrained();
          return;
        }
        slot.conn = conn;
        slot.generation++;
        slot.createdAt = this.clock.now();
        slot.queries = 0;
        this.stats.recreated++;
        this.dispatch(slot);
      },
      (err: unknown) => {
        this.creating--;
        this.stats.createFailures++;
        slot.lastError = err instanceof Error ? err.message : String(err);
        this.onConnectionError(slot.id, err);
        if (this.closed) {
          this.notifyDrained();
          return;
        }
        this.clock.setTimeout(() => this.recreate(slot, Math.min(nextDelayMs * 2, this.maxRetryDelayMs)), nextDelayMs);
      },
    );
  }

  private timeOut(w: Waiter<Lease<C>>): void {
    this.stats.waitTimeouts++;
    w.reject(poolTimeoutError(this.waitTimeoutMs));
  }

  /** Keeps one timer on the earliest waiter deadline. */
  private armTimer(): void {
    const deadline = this.queue.earliestDeadline();
    if (deadline === undefined) {
      if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
      this.timer = undefined;
      this.timerDeadline = Infinity;
      return;
    }
    if (this.timer !== undefined && this.timerDeadline <= deadline) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timerDeadline = deadline;
    this.timer = this.clock.setTimeout(() => this.onTimer(), Math.max(1, Math.ceil(deadline - this.clock.now())));
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerDeadline = Infinity;
    for (const w of this.queue.expire(this.clock.now())) this.timeOut(w);
    this.armTimer();
  }

  getStats(): PoolStats {
    let active = 0;
    let idle = 0;
    let unavailable = 0;
    for (const s of this.slots) {
      if (s.state === 'busy') active++;
      else if (s.state === 'idle') idle++;
      else unavailable++;
    }
    const oldest = this.queue.oldestEnqueuedAt();
    return {
      size: this.size,
      active,
      idle,
      unavailable,
      queueDepth: this.queue.size,
      queueByPriority: {
        critical: this.queue.sizeOf('critical'),
        high: this.queue.sizeOf('high'),
        normal: this.queue.sizeOf('normal'),
        low: this.queue.sizeOf('low'),
      },
      oldestWaitMs: oldest === undefined ? 0 : Math.max(0, this.clock.now() - oldest),
      totalAcquired: this.stats.acquired,
      totalWaitTimeouts: this.stats.waitTimeouts,
      totalQueueFull: this.stats.queueFull,
      totalCancelledWaits: this.stats.cancelledWaits,
      totalRecreated: this.stats.recreated,
      totalCreateFailures: this.stats.createFailures,
      totalCheckFailures: this.stats.checkFailures,
      totalWaitMs: this.stats.waitMs,
      closed: this.closed,
    };
  }

  slotInfo(): SlotInfo[] {
    const now = this.clock.now();
    return this.slots.map((s) => ({
      id: s.id,
      state: s.state,
      generation: s.generation,
      queries: s.queries,
      ageMs: now - s.createdAt,
      idleMs: s.state === 'idle' ? now - s.lastUsedAt : 0,
      busyMs: s.state === 'busy' ? now - s.leasedAt : 0,
      lastError: s.lastError,
    }));
  }

  /** Connections that can serve now or are serving (not being checked or recreated). */
  get liveConnections(): number {
    return this.slots.filter((s) => s.state === 'idle' || s.state === 'busy').length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Stops lending: waiters get a 503 at once, new callers too. Resolves when every lease came
   * back and every connection is closed. Callers should stop their queries (interrupt) to
   * make this quick; connections are never closed while lent out.
   */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
      this.timer = undefined;
      for (const w of this.queue.drain()) w.reject(poolClosedError());
    }
    while (this.creating > 0 || this.slots.some((s) => s.state === 'busy' || s.state === 'checking')) {
      await new Promise<void>((resolve) => this.drainedWaiters.push(resolve));
    }
    for (const s of this.slots) {
      if (s.conn !== undefined) {
        const conn = s.conn;
        s.conn = undefined;
        this.factory.destroy(conn);
      }
    }
    this.idle.length = 0;
  }

  private notifyDrained(): void {
    const waiters = this.drainedWaiters;
    this.drainedWaiters = [];
    for (const w of waiters) w();
  }
}
