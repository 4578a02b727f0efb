import type { DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { duckdbConnectionFactory, openDatabase } from '../../service/src/duckdb.ts';
import { DuckDBConnectionPool } from '../../service/src/pool.ts';
import { QueryService } from '../../service/src/query.ts';
import { SqlPolicy } from '../../service/src/sql-policy.ts';
import type { DuckDBInstance } from '@duckdb/node-api';

describe('QueryService on the real DuckDB: a long mixed run', () => {
  let instance: DuckDBInstance;
  let pool: DuckDBConnectionPool<DuckDBConnection>;
  let queries: QueryService;
  beforeAll(async () => {
    instance = await openDatabase({ duckdbPath: ':memory:', dataDir: undefined, demoData: true, memoryLimit: undefined, threads: 1, tempDir: '/tmp/arc-duckdb-test' });
    pool = await DuckDBConnectionPool.open(duckdbConnectionFactory(instance), { size: 5, waitTimeoutMs: 30_000, maxQueue: 100_000 });
    const conn = await instance.connect();
    const policy = await SqlPolicy.load(conn);
    conn.closeSync();
    queries = new QueryService(pool, { queryTimeoutMs: 30_000, largeResultRows: 5000, policy });
  });
  afterAll(async () => {
    await pool.close();
    instance.closeSync();
  });

  it('runs 100k queries, 10% of them failing, and ends with every connection back and healthy', async () => {
    const total = 100_000;
    const concurrency = 50;
    let next = 0;
    let ok = 0;
    let failed = 0;
    const worker = async () => {
      while (next < total) {
        const i = next++;
        const bad = i % 10 === 0;
        const sql = bad ? (i % 20 === 0 ? 'SELECT * FROM no_such_table' : "SELECT 'x'::INTEGER") : `SELECT ${i % 997} AS v`;
        try {
          const r = await queries.run({ sql, format: 'json', limit: undefined, priority: 'normal' });
          expect(r.body).toContain(`"data":[[${i % 997}]]`);
          ok++;
        } catch (err) {
          expect(bad, String(err)).toBe(true);
          expect((err as { statusCode: number }).statusCode).toBe(400);
          failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    expect(ok).toBe(90_000);
    expect(failed).toBe(10_000);
    const s = pool.getStats();
    expect(s).toMatchObject({ size: 5, active: 0, idle: 5, unavailable: 0, queueDepth: 0, totalWaitTimeouts: 0 });
    expect(queries.counters).toMatchObject({ executed: 90_000, failed: 10_000 });
    // Every connection answers.
    const leases = await Promise.all(Array.from({ length: 5 }, () => pool.acquire()));
    for (const l of leases) {
      const r = await l.connection.run('SELECT 1');
      expect(await r.getRows()).toEqual([[1]]);
      l.release();
    }
  }, 300_000);
});
