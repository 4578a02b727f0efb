// Answers of any size (issue 26): a 10-million-row answer from the service (a child process,
// as in production) to a fast client and to a client reading 1 MB/s, against DuckDB writing the
// same rows to a file with COPY in the same run (the floor: DuckDB's own writer, no HTTP).
// Figures: rows/s and the ratio to the floor, time to first byte, the service's peak RSS above
// its RSS before the query, and the worst /health latency while four such answers stream.
import { request } from 'node:http';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { BENCH_TOKEN, fmt, rssMb, startService } from './support.ts';

const ROWS = 10_000_000;
const SQL = `SELECT range AS i, range * 2 AS j FROM range(${ROWS})`;

export interface AnswersBench {
  copyCsvRowsPerS: number;
  copyParquetRowsPerS: number;
  json: { rowsPerS: number; ttfbMs: number; bytes: number; rssGrowthMb: number };
  csv: { rowsPerS: number; ttfbMs: number; bytes: number; rssGrowthMb: number };
  slowClient: { seconds: number; bytes: number; rssGrowthMb: number };
  healthWorstMs: number;
  idleRssMb: number;
}

interface Fetched {
  ttfbMs: number;
  totalMs: number;
  bytes: number;
}

/** POSTs a query and reads the answer, at most `bytesPerSecond` (undefined: as fast as it comes), for at most `seconds`. */
function fetchAnswer(url: string, body: object, opts: { bytesPerSecond?: number; seconds?: number } = {}): Promise<Fetched> {
  const u = new URL('/api/v1/query', url);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false, headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_TOKEN}` } },
      (res) => {
        let ttfbMs = -1;
        let bytes = 0;
        const finish = (): void => resolve({ ttfbMs, totalMs: performance.now() - t0, bytes });
        if (opts.seconds !== undefined) setTimeout(() => (res.destroy(), finish()), opts.seconds * 1000).unref();
        res.on('data', (c: Buffer) => {
          if (ttfbMs < 0) ttfbMs = performance.now() - t0;
          bytes += c.length;
          if (opts.bytesPerSecond !== undefined) {
            res.pause();
            setTimeout(() => res.resume(), (c.length / opts.bytesPerSecond) * 1000);
          }
        });
        res.on('end', finish);
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** Runs `fn` while sampling the process's RSS every 20 ms; the peak above the RSS before. */
async function peakGrowth<T>(pid: number, fn: () => Promise<T>): Promise<{ value: T; growthMb: number }> {
  const before = rssMb(pid);
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 20);
  try {
    const value = await fn();
    return { value, growthMb: peak - before };
  } finally {
    clearInterval(timer);
  }
}

async function copyFloor(format: 'csv' | 'parquet'): Promise<number> {
  const db = await DuckDBInstance.create(':memory:', { threads: '1' });
  const conn = await db.connect();
  const path = join(tmpdir(), `arc-bench-copy.${format}`);
  try {
    const t0 = performance.now();
    await conn.run(`COPY (${SQL}) TO '${path}' (FORMAT ${format})`);
    return ROWS / ((performance.now() - t0) / 1000);
  } finally {
    conn.closeSync();
    db.closeSync();
    rmSync(path, { force: true });
  }
}

async function worstHealthLatency(url: string, during: Promise<unknown>): Promise<number> {
  let worst = 0;
  let running = true;
  void during.finally(() => (running = false));
  while (running) {
    const t0 = performance.now();
    await fetch(`${url}/health`).then((r) => r.arrayBuffer());
    worst = Math.max(worst, performance.now() - t0);
    await new Promise((r) => setTimeout(r, 10));
  }
  return worst;
}

export async function benchAnswers(quick: boolean): Promise<AnswersBench> {
  const copyCsvRowsPerS = await copyFloor('csv');
  const copyParquetRowsPerS = await copyFloor('parquet');
  const svc = await startService({ DUCKDB_POOL_SIZE: '5' });
  try {
    const pid = svc.proc.pid!;
    await fetchAnswer(svc.url, { sql: 'SELECT 1' });
    const idleRssMb = rssMb(pid);
    const run = async (format: 'json' | 'csv') => {
      const { value, growthMb } = await peakGrowth(pid, () => fetchAnswer(svc.url, { sql: SQL, format }));
      return { rowsPerS: ROWS / (value.totalMs / 1000), ttfbMs: value.ttfbMs, bytes: value.bytes, rssGrowthMb: growthMb };
    };
    const json = await run('json');
    const csv = await run('csv');
    const slowSeconds = quick ? 5 : 15;
    const slow = await peakGrowth(pid, () => fetchAnswer(svc.url, { sql: SQL }, { bytesPerSecond: 1_000_000, seconds: slowSeconds }));
    const four = Promise.all(Array.from({ length: 4 }, () => fetchAnswer(svc.url, { sql: SQL }, { seconds: quick ? 5 : 15 })));
    const healthWorstMs = await worstHealthLatency(svc.url, four);
    return {
      copyCsvRowsPerS,
      copyParquetRowsPerS,
      json,
      csv,
      slowClient: { seconds: slowSeconds, bytes: slow.value.bytes, rssGrowthMb: slow.growthMb },
      healthWorstMs,
      idleRssMb,
    };
  } finally {
    await svc.stop();
  }
}

export function printAnswers(r: AnswersBench): void {
  const m = (x: number) => `${fmt(x / 1e6, 2)} M rows/s`;
  console.log(`Answers of ${ROWS / 1e6} M rows (${SQL.slice(0, 60)}…), service as a child process`);
  console.log(`  floor: DuckDB COPY TO csv ${m(r.copyCsvRowsPerS)}, parquet ${m(r.copyParquetRowsPerS)} (1 thread, same run)`);
  for (const [name, x] of [['JSON', r.json], ['CSV', r.csv]] as const) {
    console.log(
      `  ${name.padEnd(4)} ${m(x.rowsPerS)} (${fmt(x.bytes / 1e6, 0)} MB), ratio to COPY csv ${fmt(x.rowsPerS / r.copyCsvRowsPerS, 3)}, ` +
        `first byte ${fmt(x.ttfbMs, 1)} ms, peak RSS +${fmt(x.rssGrowthMb, 1)} MB`,
    );
  }
  console.log(`  a client reading 1 MB/s for ${r.slowClient.seconds} s: ${fmt(r.slowClient.bytes / 1e6, 1)} MB taken, peak RSS +${fmt(r.slowClient.rssGrowthMb, 1)} MB`);
  console.log(`  worst /health latency while 4 such answers stream: ${fmt(r.healthWorstMs, 1)} ms; idle RSS ${fmt(r.idleRssMb, 0)} MB`);
}
