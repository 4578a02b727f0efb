import genericPool from 'generic-pool';
import { Pool as TarnPool } from 'tarn';
import { DuckDBConnectionPool } from '../service/src/pool.ts';

interface Res {
  id: number;
}

interface Candidate {
  name: string;
  acquire(): Promise<unknown>;
  release(r: unknown): void;
  close(): Promise<void>;
}

async function ours(size: number): Promise<Candidate> {
  let id = 0;
  const pool = await DuckDBConnectionPool.open<Res>(
    { create: async () => ({ id: ++id }), validate: async () => true, destroy: () => {} },
    { size, waitTimeoutMs: 60_000, maxQueue: 1_000_000 },
  );
  return {
    name: 'DuckDBConnectionPool',
    acquire: () => pool.acquire('normal'),
    release: (l) => (l as { release(): void }).release(),
    close: () => pool.close(),
  };
}

async function generic(size: number): Promise<Candidate> {
  let id = 0;
  const pool = genericPool.createPool<Res>(
    { create: async () => ({ id: ++id }), destroy: async () => {} },
    { min: size, max: size, acquireTimeoutMillis: 60_000 },
  );
  await pool.ready();
  return {
    name: 'generic-pool',
    acquire: () => pool.acquire(),
    release: (r) => void pool.release(r as Res),
    close: async () => {
      await pool.drain();
      await pool.clear();
    },
  };
}

async function tarn(size: number): Promise<Candidate> {
  let id = 0;
  const pool = new TarnPool<Res>({ create: (cb: (err: Error | null, r: Res) => void) => cb(null, { id: ++id }), destroy: () => {}, min: size, max: size, acquireTimeoutMillis: 60_000 });
  // Fill the pool first so all three start with `size` ready resources.
  const warm = await Promise.all(Array.from({ length: size }, () => pool.acquire().promise));
  for (const r of warm) pool.release(r);
  return {
    name: 'tarn',
    acquire: () => pool.acquire().promise,
    release: (r) => void pool.release(r as Res),
    close: async () => {
      await pool.destroy();
    },
  };
}

/** Acquire+release cycles per second with `callers` concurrent loops over a pool of `size`. */
async function run(c: Candidate, callers: number, cycles: number): Promise<number> {
  let left = cycles;
  const loop = async () => {
    while (left-- > 0) {
      const r = await c.acquire();
      // Hold it across a tick, as a query does.
      await Promise.resolve();
      c.release(r);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: callers }, loop));
  return cycles / ((performance.now() - t0) / 1000);
}

export interface PoolBenchRow {
  callers: number;
  ops: Record<string, number>;
}

export async function benchPool(cycles: number): Promise<PoolBenchRow[]> {
  const rows: PoolBenchRow[] = [];
  for (const callers of [1, 5, 50]) {
    const ops: Record<string, number> = {};
    // Best of 3 runs each, the candidates interleaved.
    for (let i = 0; i < 3; i++) {
      for (const make of [ours, generic, tarn]) {
        const c = await make(5);
        ops[c.name] = Math.max(ops[c.name] ?? 0, await run(c, callers, cycles));
        await c.close();
      }
    }
    rows.push({ callers, ops });
  }
  return rows;
}

export function printPool(rows: PoolBenchRow[]): void {
  console.log('Pool acquire+release (pool of 5), cycles/s, best of 3');
  for (const r of rows) {
    const o = r.ops.DuckDBConnectionPool ?? 0;
    const g = r.ops['generic-pool'] ?? 0;
    const t = r.ops.tarn ?? 0;
    console.log(
      `  ${String(r.callers).padStart(3)} callers: ours ${o.toFixed(0).padStart(9)}  generic-pool ${g.toFixed(0).padStart(9)} (x${(o / g).toFixed(2)})  tarn ${t.toFixed(0).padStart(9)} (x${(o / t).toFixed(2)})`,
    );
  }
}
