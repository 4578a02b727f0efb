import { BENCH_TOKEN, type Child, fmt, load, type LoadResult, startChild, startService } from './support.ts';

export interface QueryBench {
  ours: LoadResult;
  bareReader: LoadResult;
  bareChunks: LoadResult;
  bareExclusive: LoadResult;
  /** Exclusive use with each SQL text prepared once per connection: a plan cache, no features. */
  barePrepared: LoadResult;
  /** ours / barePrepared: the cost of everything but the plan cache. */
  ratioPrepared: number;
  /** ours / bareExclusive: the cost of the pool's features at equal exclusivity. */
  ratioExclusive: number;
  /** The faster of the two bare variants: the floor. */
  floor: LoadResult;
  ratio: number;
}

function average(xs: LoadResult[]): LoadResult {
  const n = xs.length;
  return {
    rps: xs.reduce((s, x) => s + x.rps, 0) / n,
    cpuUsPerRequest: xs.reduce((s, x) => s + (x.cpuUsPerRequest ?? 0), 0) / n,
    p50: xs.reduce((s, x) => s + x.p50, 0) / n,
    p99: xs.reduce((s, x) => s + x.p99, 0) / n,
    errors: xs.reduce((s, x) => s + x.errors, 0),
    non2xx: xs.reduce((s, x) => s + x.non2xx, 0),
  };
}

function startBare(mode: 'reader' | 'chunks' | 'exclusive' | 'prepared'): Promise<Child> {
  // Same libuv threadpool as the service gets for a pool of 5 (5 + 4), so only the code differs.
  return startChild(['--conditions=arc-source', 'bench/bare-server.ts', '5', mode], { UV_THREADPOOL_SIZE: '9' }, (line) =>
    /^\d+$/.test(line.trim()) ? `http://127.0.0.1:${line.trim()}` : undefined,
  );
}

/**
 * `SELECT 1` through POST /api/v1/query against bare routes (the floor: the faster of two read
 * paths), same pool size, same machine, same run. Each round measures all three in turn, so
 * drift in the machine's load hits them alike.
 */
export async function benchQuery(seconds: number, rounds: number): Promise<QueryBench> {
  const ours = await startService({ DUCKDB_POOL_SIZE: '5' });
  const reader = await startBare('reader');
  const chunks = await startBare('chunks');
  const exclusive = await startBare('exclusive');
  const prepared = await startBare('prepared');
  try {
    const body = JSON.stringify({ sql: 'SELECT 1' });
    const auth = { authorization: `Bearer ${BENCH_TOKEN}` };
    const targets: Array<[LoadResult[], string, Record<string, string>, number]> = [
      [[], `${reader.url}/query`, {}, reader.proc.pid!],
      [[], `${chunks.url}/query`, {}, chunks.proc.pid!],
      [[], `${exclusive.url}/query`, {}, exclusive.proc.pid!],
      [[], `${prepared.url}/query`, {}, prepared.proc.pid!],
      [[], `${ours.url}/api/v1/query`, auth, ours.proc.pid!],
    ];
    for (const [, url, headers] of targets) await load(url, body, headers, 2); // warm-up
    for (let i = 0; i < rounds; i++) for (const [out, url, headers, pid] of targets) out.push(await load(url, body, headers, seconds, 32, pid));
    const bareReader = average(targets[0]![0]);
    const bareChunks = average(targets[1]![0]);
    const bareExclusive = average(targets[2]![0]);
    const barePrepared = average(targets[3]![0]);
    const o = average(targets[4]![0]);
    // The floor as the issue defines it: the bare route runs the SQL text (no plan cache).
    const floor = bareReader.rps >= bareChunks.rps ? bareReader : bareChunks;
    return {
      ours: o,
      bareReader,
      bareChunks,
      bareExclusive,
      barePrepared,
      floor,
      ratio: o.rps / floor.rps,
      ratioExclusive: o.rps / bareExclusive.rps,
      ratioPrepared: o.rps / barePrepared.rps,
    };
  } finally {
    await stopAll([ours, reader, chunks, exclusive, prepared]);
  }
}

export async function stopAll(children: Child[]): Promise<void> {
  await Promise.all(children.map((c) => c.stop()));
}

export function printQuery(r: QueryBench): void {
  const line = (name: string, x: LoadResult) =>
    `  ${name.padEnd(28)} ${fmt(x.rps, 0).padStart(6)} req/s  p50 ${fmt(x.p50, 0)} ms  p99 ${fmt(x.p99, 0)} ms  server CPU ${fmt(x.cpuUsPerRequest ?? 0, 0)} µs/req  errors ${x.errors} non-2xx ${x.non2xx}`;
  console.log('SELECT 1 over HTTP (pool of 5, libuv threadpool 9 for all, 32 connections)');
  console.log(line('bare route, runAndReadAll', r.bareReader));
  console.log(line('bare route, chunks in place', r.bareChunks));
  console.log(line('bare route, exclusive use', r.bareExclusive));
  console.log(line('bare route, exclusive, prepared', r.barePrepared));
  console.log(line('POST /api/v1/query', r.ours));
  console.log(`  ratio ours / floor (faster shared-array route): ${fmt(r.ratio, 3)}  (target >= 0.9)`);
  console.log(`  ratio ours / exclusive bare route:              ${fmt(r.ratioExclusive, 3)}`);
  console.log(`  ratio ours / exclusive prepared bare route:     ${fmt(r.ratioPrepared, 3)}  (both reuse plans: the cost of the rest)`);
}
