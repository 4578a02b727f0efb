// The query path without HTTP, in this process, one query at a time: QueryService.run (pool,
// the guard's judgement cache, timeout and cancel wiring, serialisation into the response fragments)
// against the bare read path (conn.run + chunks converted in place) on a connection of the same
// DuckDB instance. CPU time, not wall time, so the machine's other load matters less: the main
// thread's CPU per query is what the service's own JavaScript costs; all threads' CPU adds
// DuckDB's work on the threadpool, the same for both.
import { JsonDuckDBValueConverter } from '@duckdb/node-api';
import pino from 'pino';
import { loadConfig } from '../service/src/config.ts';
import { createService } from '../service/src/service.ts';
import { fmt } from './support.ts';

export interface PathCost {
  mainUs: number;
  allUs: number;
}

export interface QueryPathBench {
  bare: PathCost;
  ours: PathCost;
  /** A SQL text never seen before on every query: the guard's parse (guard.ts) is paid each time. */
  bareNew: PathCost;
  oursNew: PathCost;
}

async function cost(n: number, rounds: number, fn: () => Promise<unknown>): Promise<PathCost> {
  for (let i = 0; i < Math.min(2000, n); i++) await fn(); // warm-up
  let best: PathCost = { mainUs: Infinity, allUs: Infinity };
  for (let r = 0; r < rounds; r++) {
    const main0 = process.threadCpuUsage();
    const all0 = process.cpuUsage();
    for (let i = 0; i < n; i++) await fn();
    const main = process.threadCpuUsage(main0);
    const all = process.cpuUsage(all0);
    const c = { mainUs: (main.user + main.system) / n, allUs: (all.user + all.system) / n };
    // The least disturbed round: other processes can only add to CPU time (cache, migrations).
    if (c.mainUs < best.mainUs) best = c;
  }
  return best;
}

export async function benchQueryPath(n: number, rounds: number): Promise<QueryPathBench> {
  const config = loadConfig({ ARC_API_TOKENS: 'bench-token-0123456789', DUCKDB_THREADS: '1', DUCKDB_POOL_SIZE: '5', ARC_DEMO_DATA: 'false' });
  const service = await createService(config, { logger: pino({ level: 'warn' }), defaultMetrics: false });
  try {
    const conn = await service.instance.connect();
    try {
      const sql = 'SELECT 1';
      const bareOnce = async (): Promise<unknown[]> => {
        const result = await conn.run(sql);
        const rows: unknown[] = [];
        for (let i = 0; i < result.chunkCount; i++) rows.push(...result.getChunk(i).convertRows(JsonDuckDBValueConverter));
        return rows;
      };
      const oursOnce = () => service.queries.run({ sql, format: 'json', limit: undefined, priority: 'normal' });
      // A dashboard-like text with a literal that changes every time, so no cache can help.
      let k = 0;
      const fresh = () => `SELECT ${k++} AS v, 'host-' || 7 AS h WHERE 1 = 1 AND ${k} > 0`;
      const bareNewOnce = async (): Promise<unknown[]> => {
        const result = await conn.run(fresh());
        const rows: unknown[] = [];
        for (let i = 0; i < result.chunkCount; i++) rows.push(...result.getChunk(i).convertRows(JsonDuckDBValueConverter));
        return rows;
      };
      const oursNewOnce = () => service.queries.run({ sql: fresh(), format: 'json', limit: undefined, priority: 'normal' });
      // Interleave them, so drift in the machine's load hits all alike.
      const bare: PathCost[] = [];
      const ours: PathCost[] = [];
      const bareNew: PathCost[] = [];
      const oursNew: PathCost[] = [];
      for (let r = 0; r < rounds; r++) {
        bare.push(await cost(n, 1, bareOnce));
        ours.push(await cost(n, 1, oursOnce));
        bareNew.push(await cost(n, 1, bareNewOnce));
        oursNew.push(await cost(n, 1, oursNewOnce));
      }
      const least = (xs: PathCost[]) => xs.reduce((a, b) => (b.mainUs < a.mainUs ? b : a));
      return { bare: least(bare), ours: least(ours), bareNew: least(bareNew), oursNew: least(oursNew) };
    } finally {
      conn.closeSync();
    }
  } finally {
    await service.close();
  }
}

export function printQueryPath(r: QueryPathBench): void {
  const line = (name: string, c: PathCost) => `  ${name.padEnd(44)} main thread ${fmt(c.mainUs, 1).padStart(6)} µs/query   all threads ${fmt(c.allUs, 1).padStart(6)} µs/query`;
  console.log('SELECT 1 without HTTP, one at a time, in process (least disturbed of the rounds)');
  console.log(line('bare: conn.run + chunks in place', r.bare));
  console.log(line('QueryService.run (pool, cache, timeout, cancel)', r.ours));
  console.log(`  the service's own cost per query: +${fmt(r.ours.mainUs - r.bare.mainUs, 1)} µs main thread; all threads ratio bare / ours ${fmt(r.bare.allUs / r.ours.allUs, 3)}`);
  console.log('A new SQL text every query (the read-only guard parses each one first)');
  console.log(line('bare: conn.run + chunks in place', r.bareNew));
  console.log(line('QueryService.run (guard + the above)', r.oursNew));
  console.log(`  the guard and the service per new text: +${fmt(r.oursNew.allUs - r.bareNew.allUs, 1)} µs all threads; ratio bare / ours ${fmt(r.bareNew.allUs / r.oursNew.allUs, 3)}`);
}
