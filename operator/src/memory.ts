// Hands memory back to the system after a busy period. V8 (Node 24) keeps the pages it frees in
// a pool, resident, until a last-resort collection or a memory-pressure signal, neither of which
// comes in a quiet pod: after 1000 ArcDeployments converged the operator held ~270 MB resident
// with a ~110 MB heap, and stayed there; a new process filling its caches on such a cluster
// reached ~350 MB and stayed there too. Once no reconcile has run for a while and anonymous
// memory has grown well above where it last settled, one last-resort collection (`gc()`,
// exposed by the image's `--expose-gc`) releases the pool. Without `--expose-gc` it does nothing.
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Clock } from '@arcops/common';

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
  /** How long without a reconcile counts as idle (default 10 s). */
  idleMs?: number;
  /**
   * Growth of anonymous memory, over the lowest seen since the last release (or since start),
   * that makes a release worth it (default 32 MB). Measured at 1000 ArcDeployments: a full
   * resync adds 15-70 MB, filling the caches after a restart ~250 MB; a release costs ~0.2 s.
   */
  minGrowthBytes?: number;
  /** How often it looks (default 5 s). */
  intervalMs?: number;
}

export class MemoryTrimmer {
  private readonly o: MemoryTrimmerOptions;
  private timer: unknown;
  private lastCount = 0;
  private lastChangeAt: number;
  /** The lowest anonymous memory seen since the last release (or since start). */
  private floor = Infinity;
  /** Releases done (for tests and debugging). */
  releases = 0;

  constructor(options: MemoryTrimmerOptions) {
    this.o = options;
    this.lastChangeAt = options.clock.now();
  }

  start(): void {
    if (this.o.collect === undefined) return;
    this.floor = this.o.memory().anonymous;
    const every = this.o.intervalMs ?? 5_000;
    const loop = (): void => {
      this.tick();
      this.timer = this.o.clock.setTimeout(loop, every);
    };
    this.timer = this.o.clock.setTimeout(loop, every);
  }

  stop(): void {
    this.o.clock.clearTimeout(this.timer);
  }

  /**
   * One look: releases when no reconcile has run for a while and anonymous memory has grown well
   * above the lowest it was since the last release. Whatever a release leaves (live caches, a
   * fragmented malloc heap) is the new floor, so memory that cannot be given back is not
   * collected for again and again; a standby, which never reconciles, is idle throughout and is
   * trimmed after it fills its caches.
   */
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
    if (now - this.lastChangeAt < (this.o.idleMs ?? 10_000)) return;
    const before = this.o.memory();
    this.floor = Math.min(this.floor, before.anonymous);
    if (before.anonymous - this.floor < (this.o.minGrowthBytes ?? 32 * 1024 * 1024)) return;
    const started = performance.now();
    collect();
    const after = this.o.memory();
    this.floor = after.anonymous;
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
