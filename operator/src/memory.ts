// Hands memory back to the system after a busy period. V8 (Node 24) keeps the pages it frees in
// a pool, resident, until a last-resort collection or a memory-pressure signal, neither of which
// comes in a quiet pod: after 1000 ArcDeployments converged the operator held ~270 MB resident
// with a ~110 MB heap, and stayed there. Once the operator has been idle for a while after real
// work, and much of its anonymous memory is neither heap nor buffers (the pool, mostly), one
// last-resort collection (`gc()`, exposed by the image's `--expose-gc`) releases the pool.
// Without `--expose-gc` it does nothing.
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Clock } from './queue.ts';

export interface MemoryFigures {
  /** Resident anonymous memory (malloc, V8's pages in use and pooled, stacks), in bytes. */
  anonymous: number;
  heapTotal: number;
  external: number;
}

/** From /proc/self/smaps_rollup; where that cannot be read, RSS stands in (an overestimate). */
export function processMemory(): MemoryFigures {
  const usage = process.memoryUsage();
  let anonymous = usage.rss;
  try {
    const kb = /^Anonymous:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))?.[1];
    if (kb !== undefined) anonymous = Number(kb) * 1024;
  } catch {
    // not Linux, or no /proc
  }
  return { anonymous, heapTotal: usage.heapTotal, external: usage.external };
}

export interface MemoryTrimmerOptions {
  /** The last-resort collection; undefined when gc is not exposed (the trimmer then stays off). */
  collect: (() => void) | undefined;
  /** Reconciles run so far. */
  reconciles: () => number;
  memory: () => MemoryFigures;
  clock: Clock;
  logger: Pick<Logger, 'info'>;
  /** How long without a reconcile counts as idle (default 30 s). */
  idleMs?: number;
  /** Reconciles since the last release that make it worth another (default 100). */
  minReconciles?: number;
  /**
   * Anonymous memory that is neither heap nor buffers above which a release is worth it (default
   * 64 MB; measured at rest: ~50 MB right after a release, ~100 MB with the pool of 1000
   * ArcDeployments' convergence in it).
   */
  minUnaccountedBytes?: number;
  /** How often it looks (default 10 s). */
  intervalMs?: number;
}

export class MemoryTrimmer {
  private readonly o: MemoryTrimmerOptions;
  private timer: unknown;
  private lastCount = 0;
  private lastChangeAt: number;
  private countAtRelease = 0;
  /** Releases done (for tests and debugging). */
  releases = 0;

  constructor(options: MemoryTrimmerOptions) {
    this.o = options;
    this.lastChangeAt = options.clock.now();
  }

  start(): void {
    if (this.o.collect === undefined) return;
    const every = this.o.intervalMs ?? 10_000;
    const loop = (): void => {
      this.tick();
      this.timer = this.o.clock.setTimeout(loop, every);
    };
    this.timer = this.o.clock.setTimeout(loop, every);
  }

  stop(): void {
    this.o.clock.clearTimeout(this.timer);
  }

  /** One look: releases when idle long enough after enough work, with enough memory outside the heap. */
  tick(): void {
    const collect = this.o.collect;
    if (collect === undefined) return;
    const now = this.o.clock.now();
    const count = this.o.reconciles();
    if (count !== this.lastCount) {
      this.lastCount = count;
      this.lastChangeAt = now;
      return;
    }
    if (now - this.lastChangeAt < (this.o.idleMs ?? 30_000)) return;
    if (count - this.countAtRelease < (this.o.minReconciles ?? 100)) return;
    this.countAtRelease = count; // at most one look per busy period, whatever it finds
    const before = this.o.memory();
    if (before.anonymous - before.heapTotal - before.external < (this.o.minUnaccountedBytes ?? 64 * 1024 * 1024)) return;
    const started = performance.now();
    collect();
    const after = this.o.memory();
    this.releases++;
    const mb = (n: number): number => Math.round(n / 1024 / 1024);
    this.o.logger.info(
      { anonymousBeforeMb: mb(before.anonymous), anonymousAfterMb: mb(after.anonymous), heapMb: mb(after.heapTotal), ms: Math.round(performance.now() - started) },
      'idle after a busy period: memory handed back',
    );
  }
}

/** The last-resort collection, when node runs with --expose-gc. */
export function lastResortCollection(): (() => void) | undefined {
  const gc = (globalThis as { gc?: (options?: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void }).gc;
  if (typeof gc !== 'function') return undefined;
  return () => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
