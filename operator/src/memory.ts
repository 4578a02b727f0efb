// Hands memory back to the system after a busy period. V8 (Node 24) keeps the pages it frees in
// a pool, resident, until a last-resort collection or a memory-pressure signal, neither of which
// comes in a quiet pod: after 1000 ArcDeployments converged the operator held ~270 MB resident
// with a ~110 MB heap, and stayed there. Once the operator has been idle for a while after real
// work, and most of its resident memory is outside the heap, one last-resort collection
// (`gc()`, exposed by the image's `--expose-gc`) releases the pool. Without `--expose-gc` it
// does nothing.
import type { Logger } from 'pino';
import type { Clock } from './queue.ts';

export interface MemoryFigures {
  rss: number;
  heapTotal: number;
  external: number;
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
  /** Resident memory outside the heap above which a release is worth it (default 96 MB). */
  minOutsideHeapBytes?: number;
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
    if (before.rss - before.heapTotal - before.external < (this.o.minOutsideHeapBytes ?? 96 * 1024 * 1024)) return;
    const started = performance.now();
    collect();
    const after = this.o.memory();
    this.releases++;
    const mb = (n: number): number => Math.round(n / 1024 / 1024);
    this.o.logger.info({ rssBeforeMb: mb(before.rss), rssAfterMb: mb(after.rss), heapMb: mb(after.heapTotal), ms: Math.round(performance.now() - started) }, 'idle after a busy period: memory handed back');
  }
}

/** The last-resort collection, when node runs with --expose-gc. */
export function lastResortCollection(): (() => void) | undefined {
  const gc = (globalThis as { gc?: (options?: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void }).gc;
  if (typeof gc !== 'function') return undefined;
  return () => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
