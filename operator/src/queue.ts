// A per-key work queue, after client-go's: a key waits at most once (dedupe), is handed to one
// worker at a time (a key added while it is processed runs again afterwards, never in parallel),
// and failed keys come back after a per-key exponential backoff with jitter (capped) or later when
// a global token bucket says too many retries are happening.
//
// Two lanes: `refresh` (a change of pods or owned objects: usually a status write, or a
// remediation that is due) and `work` (an ArcDeployment that is new or changed, a resync, a
// retry: applies, often several round trips). Refresh workers take only refresh keys; the other
// workers take work keys first and refresh keys when no work waits. So a status update never
// waits behind creations, and creations keep their workers. Without the lanes, when many
// ArcDeployments are created at once, every status update waits behind every creation.

import type { Clock } from '@arcops/common';

export interface WorkQueueOptions {
  clock: Clock;
  /** First retry delay of a key. */
  baseDelayMs: number;
  /** Longest retry delay of a key (jitter included). */
  maxDelayMs: number;
  /** Global retry rate: tokens per second and bucket size. */
  qps: number;
  burst: number;
  /** Up to this fraction is added to a backoff delay at random (default 0.2). */
  jitter?: number;
  random?: () => number;
  /** Called with the number of waiting keys whenever it changes. */
  onDepth?: (depth: number) => void;
}

/** Token bucket with reservations (golang.org/x/time/rate's Reserve). */
class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly qps: number;
  private readonly burst: number;

  constructor(qps: number, burst: number, now: number) {
    this.qps = qps;
    this.burst = burst;
    this.tokens = burst;
    this.last = now;
  }

  /** Takes a token and returns how long to wait until it is really ours. */
  reserve(now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.qps) * 1000);
  }
}

export type Lane = 'work' | 'refresh';

/** What a worker takes: anything (work first), or refresh keys only. */
export type Take = 'any' | 'refresh';

export class WorkQueue {
  private readonly options: WorkQueueOptions;
  private readonly lanes: Record<Lane, string[]> = { work: [], refresh: [] };
  /** Keys waiting (or to run again after processing), with their lane. */
  private readonly dirty = new Map<string, Lane>();
  private readonly processing = new Set<string>();
  private readonly waiting = new Map<string, { at: number; handle: unknown; lane: Lane }>();
  private readonly failureCounts = new Map<string, number>();
  private readonly waiters: { take: Take; resolve: (key: string | undefined) => void }[] = [];
  private readonly bucket: TokenBucket;
  private closed = false;

  constructor(options: WorkQueueOptions) {
    this.options = options;
    this.bucket = new TokenBucket(options.qps, options.burst, options.clock.now());
  }

  /** Keys ready to be handed out (not counting delayed ones or those being processed). */
  get length(): number {
    return this.lanes.work.length + this.lanes.refresh.length;
  }

  get isShutDown(): boolean {
    return this.closed;
  }

  private reportDepth(): void {
    this.options.onDepth?.(this.length);
  }

  /** Adds the key in a lane; a key already waiting in `work` moves up when added to `refresh`. */
  add(key: string, lane: Lane = 'work'): void {
    if (this.closed) return;
    const current = this.dirty.get(key);
    if (current !== undefined) {
      if (lane === 'refresh' && current === 'work') {
        this.dirty.set(key, 'refresh');
        const i = this.lanes.work.indexOf(key);
        if (i >= 0) {
          this.lanes.work.splice(i, 1);
          this.push(key, 'refresh'); // to an idle refresh worker, if one waits
          this.reportDepth();
        }
      }
      return;
    }
    this.dirty.set(key, lane);
    if (this.processing.has(key)) return;
    this.push(key, lane);
  }

  private push(key: string, lane: Lane): void {
    const i = this.waiters.findIndex((w) => w.take === 'any' || lane === 'refresh');
    if (i >= 0) {
      const [waiter] = this.waiters.splice(i, 1);
      this.dirty.delete(key);
      this.processing.add(key);
      waiter!.resolve(key);
      return;
    }
    this.lanes[lane].push(key);
    this.reportDepth();
  }

  /** Adds the key after `delayMs`; an earlier pending add of the same key wins (in the higher lane of the two). */
  addAfter(key: string, delayMs: number, lane: Lane = 'work'): void {
    if (this.closed) return;
    if (delayMs <= 0) {
      this.add(key, lane);
      return;
    }
    const at = this.options.clock.now() + delayMs;
    const pending = this.waiting.get(key);
    if (pending !== undefined) {
      if (lane === 'refresh') pending.lane = 'refresh';
      if (pending.at <= at) return;
      this.options.clock.clearTimeout(pending.handle);
    }
    const entry = { at, handle: undefined as unknown, lane: pending?.lane ?? lane };
    entry.handle = this.options.clock.setTimeout(() => {
      this.waiting.delete(key);
      this.add(key, entry.lane);
    }, delayMs);
    this.waiting.set(key, entry);
  }

  /** The delay the next failure of `key` would get from its own backoff (before the bucket). */
  backoffFor(failures: number): number {
    const { baseDelayMs, maxDelayMs } = this.options;
    const exp = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(failures, 52));
    const jitter = exp * (this.options.jitter ?? 0.2) * (this.options.random ?? Math.random)();
    return Math.min(maxDelayMs, Math.round(exp + jitter));
  }

  /**
   * Re-adds a key that failed, after its backoff (and the global bucket's), and not before
   * `atLeastMs` (the API server's Retry-After, capped at maxDelayMs); returns the delay.
   */
  addRateLimited(key: string, atLeastMs = 0): number {
    const failures = this.failureCounts.get(key) ?? 0;
    this.failureCounts.set(key, failures + 1);
    const delay = Math.max(this.backoffFor(failures), this.bucket.reserve(this.options.clock.now()), Math.min(atLeastMs, this.options.maxDelayMs));
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears a key's failure count (it succeeded). */
  forget(key: string): void {
    this.failureCounts.delete(key);
  }

  failures(key: string): number {
    return this.failureCounts.get(key) ?? 0;
  }

  /**
   * The next key to work on (`any`: a work key first, else a refresh key; `refresh`: refresh keys
   * only); undefined once the queue is shut down. Call done(key) after.
   */
  get(take: Take = 'any'): Promise<string | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    const { work, refresh } = this.lanes;
    const key = take === 'refresh' ? refresh.shift() : (work.shift() ?? refresh.shift());
    if (key !== undefined) {
      this.dirty.delete(key);
      this.processing.add(key);
      this.reportDepth();
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.waiters.push({ take, resolve }));
  }

  /** Marks a key processed; if it was added meanwhile it is queued again. */
  done(key: string): void {
    this.processing.delete(key);
    const lane = this.dirty.get(key);
    if (lane !== undefined && !this.closed) {
      this.dirty.delete(key);
      this.add(key, lane);
    }
  }

  /** Drops every waiting, delayed and re-added key (e.g. when leadership is lost); keeps failure counts. */
  clear(): void {
    for (const { handle } of this.waiting.values()) this.options.clock.clearTimeout(handle);
    this.waiting.clear();
    this.dirty.clear();
    this.lanes.work.length = 0;
    this.lanes.refresh.length = 0;
    this.reportDepth();
  }

  shutdown(): void {
    if (this.closed) return;
    this.clear();
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.resolve(undefined);
  }
}
