import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../service/src/config.ts';
import { createDataViews, createDemoData } from '../../service/src/duckdb.ts';
import { type Catalog, isReusablePlan } from '../../service/src/plan-cache.ts';
import { writeParquet } from '../support/parquet.ts';
import { type RunningService, startService } from '../support/service.ts';

describe('isReusablePlan, judged on DuckDB’s own parse', () => {
  let db: DuckDBInstance;
  let conn: DuckDBConnection;
  let dir: string;
  const catalog: Catalog = { tables: new Set(['cpu', 'mem']), views: new Set(['weather']) };
  const judge = async (sql: string): Promise<boolean> => {
    const reader = await conn.runAndReadAll(`SELECT json_serialize_sql('${sql.replaceAll("'", "''")}')`);
    return isReusablePlan(String(reader.getRows()[0]![0]), catalog);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'arc-plan-'));
    mkdirSync(join(dir, 'weather'));
    await writeParquet(join(dir, 'weather', 'a.parquet'), "SELECT 'oslo' AS city");
    db = await DuckDBInstance.create(':memory:');
    conn = await db.connect();
    await createDemoData(conn);
    await createDataViews(conn, dir);
  });
  afterAll(() => {
    conn.closeSync();
    db.closeSync();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    'SELECT 1',
    'SELECT host, avg(usage_user) FROM cpu WHERE time > now() - INTERVAL 1 DAY GROUP BY 1',
    'SELECT * FROM main.cpu JOIN mem USING (host, time) LIMIT 3',
    'WITH x AS (SELECT * FROM cpu) SELECT count(*) FROM x',
    'SELECT (SELECT max(used_bytes) FROM mem), count(*) FROM CPU',
    'SELECT * FROM (VALUES (1), (2)) t(a)',
    'SELECT host FROM cpu UNION ALL SELECT host FROM mem',
  ])('reuses the plan of %s (only tables and constants)', async (sql) => {
    expect(await judge(sql)).toBe(true);
  });

  it.each([
    ['a view over a Parquet glob', 'SELECT * FROM weather'],
    ['a table function', "SELECT * FROM read_parquet('/data/*.parquet')"],
    ['a file named as a table', "SELECT * FROM '/data/x.parquet'"],
    ['a table function in a subquery', 'SELECT (SELECT count(*) FROM duckdb_tables())'],
    ['a table function in a CTE', 'WITH t AS (SELECT * FROM range(3)) SELECT * FROM t'],
    ['a CTE that reads a view', 'WITH cpu AS (SELECT * FROM weather) SELECT * FROM cpu'],
    ['a name that is no table', 'SELECT * FROM nowhere'],
    ['another schema', 'SELECT * FROM information_schema.tables'],
    ['another catalog', 'SELECT * FROM memory.main.cpu'],
    ['SHOW', 'SHOW TABLES'],
    ['DESCRIBE', 'DESCRIBE cpu'],
    ['PIVOT (its values come from the data at bind time)', 'PIVOT cpu ON region USING avg(usage_user)'],
    ['EXPLAIN (not serialisable)', 'EXPLAIN SELECT 1'],
  ])('runs from the text: %s', async (_why, sql) => {
    expect(await judge(sql)).toBe(false);
  });

  it('refuses what it cannot read', () => {
    expect(isReusablePlan('not json', catalog)).toBe(false);
    expect(isReusablePlan('{"error":true}', catalog)).toBe(false);
    expect(isReusablePlan('{"error":false,"statements":[]}', catalog)).toBe(false);
  });
});

describe('reused plans in the real service (DuckDB + HTTP)', () => {
  let dir: string;
  let svc: RunningService;
  const rows = async (sql: string): Promise<unknown[][]> => {
    const res = await svc.query({ sql });
    const body = (await res.json()) as { data: unknown[][]; error: string | null };
    expect(res.status, `${sql}: ${body.error}`).toBe(200);
    return body.data;
  };
  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`${svc.url}/metrics`)).text();
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    expect(m, `${name} in /metrics`).not.toBeNull();
    return Number(m![1]);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'arc-plan-svc-'));
    mkdirSync(join(dir, 'weather', '2026'), { recursive: true });
    await writeParquet(join(dir, 'weather', '2026', 'a.parquet'), "SELECT 'oslo' AS city");
    // Demo tables and a data dir together, one connection, short timeouts.
    svc = await startService({ ARC_DATA_DIR: dir, ARC_DEMO_DATA: 'true', DUCKDB_POOL_SIZE: '1', DUCKDB_QUERY_TIMEOUT: '0.3' });
  });
  afterAll(async () => {
    await svc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs a repeated table query from a reused plan, with the same answer', async () => {
    const sql = "SELECT count(*), round(avg(usage_user), 3) FROM cpu WHERE region = 'eu-central'";
    const hits0 = await metric('arc_service_plan_cache_hits_total');
    const first = await rows(sql);
    for (let i = 0; i < 5; i++) expect(await rows(sql)).toEqual(first);
    // First sighting parses, the second prepares, the rest reuse.
    expect(await metric('arc_service_plan_cache_hits_total')).toBe(hits0 + 4);
    expect(await metric('arc_service_plan_cache_plans')).toBeGreaterThanOrEqual(1);
  });

  it('evaluates now() at each run, not once when the plan was made', async () => {
    const sql = 'SELECT epoch_us(now())';
    const seen: number[] = [];
    for (let i = 0; i < 4; i++) {
      seen.push(Number((await rows(sql))[0]![0]));
      await new Promise((r) => setTimeout(r, 5));
    }
    for (let i = 1; i < seen.length; i++) expect(seen[i]!, `run ${i} of ${JSON.stringify(seen)}`).toBeGreaterThan(seen[i - 1]!);
  });

  it('sees Parquet files added after a view or a glob was queried twice (those plans are not reused)', async () => {
    const viewSql = 'SELECT city FROM weather ORDER BY city';
    const globSql = `SELECT count(*) FROM read_parquet('${dir}/weather/**/*.parquet')`;
    for (let i = 0; i < 3; i++) {
      expect(await rows(viewSql)).toEqual([['oslo']]);
      expect(await rows(globSql)).toEqual([[1]]);
    }
    mkdirSync(join(dir, 'weather', '2027'));
    await writeParquet(join(dir, 'weather', '2027', 'b.parquet'), "SELECT 'rome' AS city");
    expect(await rows(viewSql)).toEqual([['oslo'], ['rome']]);
    expect(await rows(globSql)).toEqual([[2]]);
  });

  it('interrupts a reused plan at the query timeout, and the connection and plan serve on', async () => {
    const slow = 'SELECT count(*) FROM cpu a, cpu b, cpu c WHERE a.usage_user + b.usage_user > c.usage_user';
    for (let i = 0; i < 3; i++) {
      const res = await svc.query({ sql: slow });
      expect(res.status, `run ${i}`).toBe(504);
    }
    const sql = 'SELECT max(host) FROM cpu';
    for (let i = 0; i < 3; i++) expect(await rows(sql)).toEqual([['server07']]);
    const m = await (await fetch(`${svc.url}/api/v1/metrics`, { headers: { authorization: `Bearer ${svc.token}` } })).json();
    expect(m).toMatchObject({ pool_size: 1, active_connections: 0, idle_connections: 1 });
  });

  it('drops a connection’s plans when a large result replaces the connection', async () => {
    const big = 'SELECT time, host FROM cpu'; // 10 000 rows > DUCKDB_LARGE_RESULT_ROWS
    for (let i = 0; i < 4; i++) expect(await rows(big)).toHaveLength(10_000);
    const m = (await (await fetch(`${svc.url}/api/v1/metrics`, { headers: { authorization: `Bearer ${svc.token}` } })).json()) as Record<string, number>;
    expect(m.total_connections_recreated).toBeGreaterThanOrEqual(4);
    // Every plan belonged to a connection that has since been replaced.
    expect(svc.service.queries.plans?.size).toBe(0);
  });

  it('runs from the text when DUCKDB_PLAN_CACHE_SIZE is 0', async () => {
    const off = await startService({ DUCKDB_PLAN_CACHE_SIZE: '0' });
    try {
      for (let i = 0; i < 3; i++) expect((await (await off.query({ sql: 'SELECT count(*) FROM cpu' })).json()) as object).toMatchObject({ data: [[10000]] });
      expect(off.service.queries.plans?.hits).toBe(0);
      expect(off.service.queries.plans?.size).toBe(0);
    } finally {
      await off.close();
    }
  });
});

describe('DUCKDB_PLAN_CACHE_SIZE', () => {
  it('defaults to 64 plans per connection and refuses what is not a count', () => {
    expect(loadConfig({ ARC_API_TOKENS: 'token-0123456789' }).planCacheSize).toBe(64);
    expect(loadConfig({ ARC_API_TOKENS: 'token-0123456789', DUCKDB_PLAN_CACHE_SIZE: '0' }).planCacheSize).toBe(0);
    for (const bad of ['-1', 'many', '1.5']) {
      expect(() => loadConfig({ ARC_API_TOKENS: 'token-0123456789', DUCKDB_PLAN_CACHE_SIZE: bad }), bad).toThrow(/DUCKDB_PLAN_CACHE_SIZE/);
    }
  });
});
