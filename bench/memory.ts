import { BENCH_TOKEN, rssMb, startService } from './support.ts';

export interface MemoryBench {
  rssAfter200: number;
  rssAfter2000: number;
  growth: number;
  maxHealthLatencyMs: number;
  bigQueryMs: number;
}

async function query(url: string, sql: string): Promise<void> {
  const res = await fetch(`${url}/api/v1/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_TOKEN}` },
    body: JSON.stringify({ sql }),
  });
  if (res.status !== 200) throw new Error(`query failed: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}

/**
 * RSS of the service after 200 and after 2000 queries of 10k rows (each one also replaces its
 * connection: 10k > DUCKDB_LARGE_RESULT_ROWS), and the worst /health latency while a 200k-row
 * answer is serialised (how long the event loop stalls for other requests).
 */
export async function benchMemory(): Promise<MemoryBench> {
  const svc = await startService({ DUCKDB_POOL_SIZE: '5' });
  try {
    const pid = svc.proc.pid!;
    const sql = 'SELECT * FROM cpu';
    const runN = async (n: number) => {
      let left = n;
      await Promise.all(
        Array.from({ length: 5 }, async () => {
          while (left-- > 0) await query(svc.url, sql);
        }),
      );
    };
    await runN(200);
    const rssAfter200 = rssMb(pid);
    await runN(1800);
    const rssAfter2000 = rssMb(pid);

    let worst = 0;
    let stop = false;
    const probe = (async () => {
      while (!stop) {
        const t0 = performance.now();
        await (await fetch(`${svc.url}/health`)).arrayBuffer();
        worst = Math.max(worst, performance.now() - t0);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const t0 = performance.now();
    await query(svc.url, 'SELECT i, i * 2 AS j, md5(CAST(i AS VARCHAR)) AS h, TIMESTAMP \'2026-01-01\' + INTERVAL (i) SECOND AS t FROM range(200000) t(i)');
    const bigQueryMs = performance.now() - t0;
    stop = true;
    await probe;
    return { rssAfter200, rssAfter2000, growth: rssAfter2000 / rssAfter200, maxHealthLatencyMs: worst, bigQueryMs };
  } finally {
    await svc.stop();
  }
}

export function printMemory(m: MemoryBench): void {
  console.log('Service memory and event-loop stalls');
  console.log(`  RSS after 200 queries of 10k rows:  ${m.rssAfter200.toFixed(1)} MB`);
  console.log(`  RSS after 2000 queries of 10k rows: ${m.rssAfter2000.toFixed(1)} MB  (ratio ${m.growth.toFixed(3)}, target <= 1.10)`);
  console.log(`  200k-row JSON answer took ${m.bigQueryMs.toFixed(0)} ms; worst /health latency meanwhile ${m.maxHealthLatencyMs.toFixed(1)} ms (target ~50 ms)`);
}
