import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, type RunningService, SLOW_SQL, startService, TEST_TOKEN } from '../support/service.ts';

interface Envelope {
  success: boolean;
  columns?: string[];
  data?: unknown[][];
  row_count?: number;
  execution_time_ms?: number;
  wait_time_ms?: number;
  timestamp?: string;
  error: string | null;
  code?: string;
}

type Metrics = Record<string, number | string>;

describe('query API on the real service (DuckDB + HTTP on loopback), default settings', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService();
  });
  afterAll(async () => svc.close());

  it("passes the deployment guide's check: 10 concurrent queries all succeed and the pool comes back", async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, () => svc.query({ sql: 'SELECT COUNT(*) AS n FROM cpu' }).then(async (r) => ({ status: r.status, body: (await r.json()) as Envelope }))),
    );
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ success: true, columns: ['n'], data: [[10000]], row_count: 1, error: null });
      expect(typeof r.body.execution_time_ms).toBe('number');
      expect(typeof r.body.wait_time_ms).toBe('number');
      expect(r.body.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    }
    const m = await svc.json<Metrics>('/api/v1/metrics');
    expect(m).toMatchObject({ pool_implementation: 'DuckDBConnectionPool', pool_size: 5, active_connections: 0, idle_connections: 5, queue_depth: 0, total_queries_timeout: 0 });
  });

  it('serves 1000 concurrent cheap queries on a pool of 5, every one successful', async () => {
    const before = await svc.json<Metrics>('/api/v1/metrics');
    const statuses = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        svc.query({ sql: `SELECT ${i} AS i` }).then(async (r) => {
          const b = (await r.json()) as Envelope;
          return r.status === 200 && b.success && b.data?.[0]?.[0] === i;
        }),
      ),
    );
    expect(statuses.filter((ok) => !ok)).toHaveLength(0);
    const m = await svc.json<Metrics>('/api/v1/metrics');
    expect(m.active_connections).toBe(0);
    expect(m.idle_connections).toBe(5);
    expect(m.queue_depth).toBe(0);
    expect(Number(m.total_queries_executed) - Number(before.total_queries_executed)).toBe(1000);
    expect(m.total_queries_timeout).toBe(0);
  });

  it('accepts the token as Bearer, Token, with no scheme (as Arc does) and as x-api-key, and refuses a wrong or missing one', async () => {
    const call = (headers: Record<string, string>) =>
      fetch(`${svc.url}/api/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"sql":"SELECT 1"}' });
    expect((await call({ authorization: `Bearer ${TEST_TOKEN}` })).status).toBe(200);
    expect((await call({ authorization: `Token ${TEST_TOKEN}` })).status).toBe(200);
    expect((await call({ 'x-api-key': TEST_TOKEN })).status).toBe(200);
    expect((await call({ authorization: TEST_TOKEN })).status).toBe(200);
    const bad: Array<Record<string, string>> = [
      {},
      { authorization: 'Bearer wrong-token-123' },
      { authorization: `Basic ${TEST_TOKEN}` },
      { authorization: 'wrong-token-123' },
      { 'x-api-key': '' },
    ];
    for (const headers of bad) {
      const res = await call(headers);
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ success: false, error: 'Missing or invalid API token' });
    }
    for (const path of ['/api/v1/metrics', '/api/v1/metrics/query-pool', '/api/v1/runtime']) {
      expect((await fetch(`${svc.url}${path}`)).status).toBe(401);
    }
    for (const path of ['/health', '/ready', '/metrics']) {
      expect((await fetch(`${svc.url}${path}`)).status).toBe(200);
    }
  });

  it.each([
    ['malformed JSON', '{"sql":', 400],
    ['a JSON array', '[]', 400],
    ['missing sql', '{}', 400],
    ['sql of the wrong type', '{"sql": 42}', 400],
    ['empty sql', '{"sql": "   "}', 400],
    ['unknown format', '{"sql": "SELECT 1", "format": "xml"}', 400],
    ['unknown priority', '{"sql": "SELECT 1", "priority": "urgent"}', 400],
    ['negative limit', '{"sql": "SELECT 1", "limit": -1}', 400],
    ['fractional limit', '{"sql": "SELECT 1", "limit": 1.5}', 400],
    ['two statements', '{"sql": "SELECT 1; SELECT 2"}', 400],
    ['a syntax error', '{"sql": "SELEC 1"}', 400],
    ['an unknown table', '{"sql": "SELECT * FROM no_such_table"}', 400],
    ['a bad cast', `{"sql": "SELECT 'abc'::INTEGER"}`, 400],
    ['a parameter placeholder', '{"sql": "SELECT $1"}', 400],
    ['a body over the limit', JSON.stringify({ sql: `SELECT '${'x'.repeat(2 * 1024 * 1024)}'` }), 413],
  ])('answers %s with a clear 4xx, never a 500', async (_what, body, status) => {
    const res = await svc.query(body);
    expect(res.status).toBe(status);
    const b = (await res.json()) as Envelope;
    expect(b.success).toBe(false);
    expect(typeof b.error).toBe('string');
    expect((b.error ?? '').length).toBeGreaterThan(5);
  });

  it('answers a non-JSON content type with 415 and unknown routes with 404, in the same envelope', async () => {
    const res = await fetch(`${svc.url}/api/v1/query`, { method: 'POST', headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'sql=SELECT+1' });
    expect(res.status).toBe(415);
    expect(await res.json()).toMatchObject({ success: false });
    const nf = await fetch(`${svc.url}/api/v1/nope`);
    expect(nf.status).toBe(404);
    expect(await nf.json()).toMatchObject({ success: false });
  });

  it('leaks no connection after all the bad requests', async () => {
    const m = await svc.json<Metrics>('/api/v1/metrics');
    expect(m).toMatchObject({ active_connections: 0, idle_connections: 5, unavailable_connections: 0 });
  });

  it('really limits rows and really writes CSV', async () => {
    const limited = (await (await svc.query({ sql: 'SELECT * FROM cpu ORDER BY time', limit: 7 })).json()) as Envelope;
    expect(limited.row_count).toBe(7);
    expect(limited.data).toHaveLength(7);
    const none = (await (await svc.query({ sql: 'SELECT * FROM cpu', limit: 0 })).json()) as Envelope;
    expect(none).toMatchObject({ success: true, row_count: 0, data: [] });
    expect(none.columns).toEqual(['time', 'host', 'region', 'usage_user', 'usage_system', 'usage_idle']);
    const res = await svc.query({ sql: `SELECT host, 'a,"b"' AS tricky, NULL AS n FROM cpu ORDER BY time`, format: 'csv', limit: 3 });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(res.headers.get('x-row-count')).toBe('3');
    expect(await res.text()).toBe('host,tricky,n\r\nserver00,"a,""b""",\r\nserver01,"a,""b""",\r\nserver02,"a,""b""",\r\n');
  });

  it('serves the flat metrics, the Arc query-pool shape, runtime, readiness and Prometheus text', async () => {
    const flat = await svc.json<Metrics>('/api/v1/metrics');
    for (const k of ['pool_size', 'active_connections', 'idle_connections', 'queue_depth', 'oldest_wait_ms', 'total_queries_executed', 'total_queries_failed', 'total_queries_timeout', 'total_connections_recreated', 'pool_implementation']) {
      expect(flat).toHaveProperty(k);
    }
    const qp = await svc.json<{ timestamp: string; pool: Metrics; connections: Array<Record<string, unknown>> }>('/api/v1/metrics/query-pool');
    expect(qp.pool).toMatchObject({ pool_size: 5, active_connections: 0, idle_connections: 5, queue_depth: 0 });
    expect(qp.connections).toHaveLength(5);
    const rt = await svc.json<{ pool_implementation: string; loaded_modules: string[]; version: string }>('/api/v1/runtime');
    expect(rt.pool_implementation).toBe('DuckDBConnectionPool');
    expect(rt.loaded_modules.some((m) => m.includes('fastify'))).toBe(true);
    const ready = await fetch(`${svc.url}/ready`);
    expect(ready.status).toBe(200);
    const prom = await (await fetch(`${svc.url}/metrics`)).text();
    expect(prom).toMatch(/^arc_service_pool_size 5$/m);
    expect(prom).toMatch(/^arc_service_pool_connections\{state="idle"\} 5$/m);
    expect(prom).toMatch(/^arc_service_queries_executed_total \d+$/m);
  });
});

describe('read-only sandbox', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService();
  });
  afterAll(async () => svc.close());

  it.each([
    ['read a file outside the data dir', "SELECT * FROM read_csv('/etc/passwd')"],
    ['read text of a file', "SELECT * FROM read_text('/etc/hostname')"],
    ['list files', "SELECT * FROM glob('/etc/*')"],
    ['reach the network', "SELECT * FROM read_parquet('http://127.0.0.1:9/x.parquet')"],
    ['write a file', "COPY (SELECT 1) TO '/tmp/arc-sandbox-escape.csv'"],
    ['export the database', "EXPORT DATABASE '/tmp/arc-sandbox-export'"],
    ['attach a database file', "ATTACH '/tmp/arc-sandbox.db' AS x"],
    ['attach an in-memory database', "ATTACH ':memory:' AS y"],
    ['install an extension', 'INSTALL httpfs'],
    ['load an extension', 'LOAD httpfs'],
    ['change a setting', 'SET threads = 1'],
    ['change a setting by pragma', 'PRAGMA threads = 1'],
    ['re-enable file access', 'SET enable_external_access = true'],
    ['switch database', 'USE memory'],
    ['create a table', 'CREATE TABLE t AS SELECT 1'],
    ['insert', 'INSERT INTO cpu (host) VALUES (1)'],
    ['update', "UPDATE cpu SET host = 'x'"],
    ['delete', 'DELETE FROM cpu'],
    ['drop', 'DROP TABLE cpu'],
    ['alter', 'ALTER TABLE cpu ADD COLUMN x INT'],
    ['call a procedure', 'CALL pragma_version()'],
    ['checkpoint', 'CHECKPOINT'],
    ['create a secret', 'CREATE SECRET s (TYPE s3)'],
  ])('refuses to %s with a 403', async (_what, sql) => {
    const res = await svc.query({ sql });
    const body = (await res.json()) as Envelope;
    expect(res.status, body.error ?? '').toBe(403);
    expect(body.success).toBe(false);
  });

  it('judges by the parse, not by words: a SELECT that mentions DROP runs', async () => {
    const res = await svc.query({ sql: "SELECT 'DROP' AS s, 'DELETE FROM cpu' AS t" });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Envelope).data).toEqual([['DROP', 'DELETE FROM cpu']]);
  });

  it('runs EXPLAIN, DESCRIBE, SHOW and SUMMARIZE (read-only statements)', async () => {
    for (const sql of ['EXPLAIN SELECT 1', 'DESCRIBE cpu', 'SHOW TABLES', 'SUMMARIZE SELECT 1 AS x']) {
      const res = await svc.query({ sql });
      expect(res.status, sql).toBe(200);
    }
  });

  it('is unharmed afterwards: data intact, no file written, every connection idle', async () => {
    const body = (await (await svc.query({ sql: 'SELECT count(*) FROM cpu' })).json()) as Envelope;
    expect(body.data).toEqual([[10000]]);
    const { existsSync } = await import('node:fs');
    expect(existsSync('/tmp/arc-sandbox-escape.csv')).toBe(false);
    expect(existsSync('/tmp/arc-sandbox.db')).toBe(false);
    const m = await svc.json<Metrics>('/api/v1/metrics');
    expect(m).toMatchObject({ active_connections: 0, idle_connections: 5, unavailable_connections: 0 });
  });
});

describe('answers that stay true to what was asked', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService();
  });
  afterAll(async () => svc.close());

  async function send(body: Record<string, unknown>): Promise<{ status: number; body: Envelope }> {
    const res = await svc.query(body);
    return { status: res.status, body: (await res.json()) as Envelope };
  }

  it.each([';', '-- only a comment', '/* only a comment */', ' ; ; '])('answers %j, a text with no statement, with 400', async (sql) => {
    const r = await send({ sql });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('The SQL text holds no statement');
  });

  it('refuses a text with a NUL byte with 400 instead of running the part before it', async () => {
    const r = await send({ sql: 'SELECT 1 AS a\0; DROP TABLE cpu' });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/NUL character/);
  });

  it('refuses writes with 403 whether or not their target exists, naming no table', async () => {
    for (const sql of ['DROP TABLE x', 'INSERT INTO nosuch VALUES (1)', 'DROP TABLE cpu']) {
      const r = await send({ sql });
      expect(r.status, sql).toBe(403);
      expect(r.body.code).toBe('ARC_ERR_READ_ONLY');
      expect(r.body.error).not.toMatch(/Did you mean|cpu|mem/);
    }
  });

  it('refuses duckdb_secrets() with 403 instead of a 500', async () => {
    const r = await send({ sql: 'SELECT * FROM duckdb_secrets()' });
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('ARC_ERR_SANDBOX');
  });

  it('tells how to write a PIVOT the read-only API can run, and runs that one', async () => {
    const dynamic = await send({ sql: 'PIVOT cpu ON region USING count(*)' });
    expect(dynamic.status).toBe(400);
    expect(dynamic.body.error).toMatch(/IN list.*PIVOT cpu ON region IN/);
    const listed = await send({ sql: "PIVOT (SELECT region FROM cpu) ON region IN ('us-east', 'eu-central') USING count(*)" });
    expect(listed.status, listed.body.error ?? '').toBe(200);
    expect(listed.body).toMatchObject({ columns: ['us-east', 'eu-central'], data: [[2500, 2500]] });
  });

  it('gives duplicate column names unique, predictable names that cannot collide with a real one', async () => {
    const r = await send({ sql: 'SELECT 1 AS a, 2 AS a, 3 AS "a_2", 4 AS "a:1"' });
    expect(r.body).toMatchObject({ columns: ['a', 'a_3', 'a_2', 'a:1'], data: [[1, 2, 3, 4]] });
  });

  it('tells NULL from the empty string in CSV, and writes NULL as the text the client asks for', async () => {
    const sql = "SELECT NULL AS n, '' AS e, 'NULL' AS s";
    const plain = await svc.query({ sql, format: 'csv' });
    expect(await plain.text()).toBe('n,e,s\r\n,"",NULL\r\n');
    const marked = await svc.query({ sql, format: 'csv', csv_null: 'NULL' });
    expect(await marked.text()).toBe('n,e,s\r\nNULL,"","NULL"\r\n');
    const bad = await send({ sql, format: 'json', csv_null: 'NULL' });
    expect(bad.status).toBe(400);
    expect((await send({ sql, format: 'csv', csv_null: 'a,b' })).status).toBe(400);
  });

  it('writes formula-looking CSV cells as they are', async () => {
    const res = await svc.query({ sql: "SELECT '=1+2' AS f, '@x' AS g, '-3' AS h", format: 'csv' });
    expect(await res.text()).toBe('f,g,h\r\n=1+2,@x,-3\r\n');
  });
});

describe('POST /api/v1/query/estimate, as Arc answers it', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService();
  });
  afterAll(async () => svc.close());

  const estimate = async (sql: string) => {
    const res = await fetch(`${svc.url}/api/v1/query/estimate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${svc.token}` },
      body: JSON.stringify({ sql }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it.each([
    ['SELECT * FROM cpu', 10000, 'none'],
    ['SELECT * FROM cpu;  ', 10000, 'none'],
    ['SELECT * FROM cpu -- every row', 10000, 'none'],
    ['SELECT * FROM range(10001)', 10001, 'low'],
    ['SELECT * FROM range(100001)', 100001, 'medium'],
    ['SELECT * FROM range(2000000)', 2000000, 'high'],
  ])('counts %s: %i rows, warning %s', async (sql, rows, level) => {
    const r = await estimate(sql);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ success: true, estimated_rows: rows, warning_level: level });
    expect(typeof r.body.warning_message).toBe('string');
    expect(typeof r.body.execution_time_ms).toBe('number');
  });

  it('answers bad SQL with 400 and a refused one with 403, warning level error', async () => {
    expect(await estimate('SELEC 1')).toMatchObject({ status: 400, body: { success: false, estimated_rows: null, warning_level: 'error' } });
    expect(await estimate('SELECT * FROM duckdb_logs')).toMatchObject({ status: 403, body: { success: false, warning_level: 'error' } });
    expect((await estimate('DROP TABLE cpu')).status).toBe(400);
    expect((await svc.query({ sql: 'SELECT count(*) FROM cpu' }).then((r) => r.json())) as Envelope).toMatchObject({ data: [[10000]] });
  });
});

describe('waiting, timeouts and cancellation (pool of 1)', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService({ DUCKDB_POOL_SIZE: '1', DUCKDB_POOL_TIMEOUT: '0.5', DUCKDB_MAX_QUEUE: '2' });
  });
  afterAll(async () => svc.close());

  it('answers 503 + Retry-After with the exact text at the wait deadline, then recovers when the holder leaves', async () => {
    const holder = new AbortController();
    const held = svc.query({ sql: SLOW_SQL }, { signal: holder.signal }).catch((e: unknown) => e);
    await eventually(async () => (await svc.json<Metrics>('/api/v1/metrics')).active_connections === 1);
    const res = await svc.query({ sql: 'SELECT 1' });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toMatchObject({ success: false, error: 'No available connections after 0.5s' });
    expect((await svc.json<Metrics>('/api/v1/metrics')).total_queries_timeout).toBe(1);
    holder.abort();
    await held;
    await eventually(async () => (await svc.json<Metrics>('/api/v1/metrics')).active_connections === 0, 5000, 'the cancelled query to give its connection back');
    const ok = await svc.query({ sql: 'SELECT 42 AS x' });
    expect(await ok.json()).toMatchObject({ success: true, data: [[42]] });
  });

  it('refuses at once when the wait queue is full, and reports waiters by priority', async () => {
    const holder = new AbortController();
    const held = svc.query({ sql: SLOW_SQL }, { signal: holder.signal }).catch((e: unknown) => e);
    await eventually(async () => (await svc.json<Metrics>('/api/v1/metrics')).active_connections === 1);
    const w1 = svc.query({ sql: 'SELECT 1', priority: 'critical' });
    const w2 = svc.query({ sql: 'SELECT 1', priority: 'low' });
    await eventually(async () => (await svc.json<Metrics>('/api/v1/metrics')).queue_depth === 2);
    const qp = await svc.json<{ pool: { queue_by_priority: Record<string, number> } }>('/api/v1/metrics/query-pool');
    expect(qp.pool.queue_by_priority).toEqual({ critical: 1, high: 0, normal: 0, low: 1 });
    const started = Date.now();
    const full = await svc.query({ sql: 'SELECT 1' });
    expect(full.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(400);
    expect(((await full.json()) as Envelope).error).toMatch(/queue is full/);
    expect((await w1).status).toBe(503);
    expect((await w2).status).toBe(503);
    holder.abort();
    await held;
    await eventually(async () => (await svc.json<Metrics>('/api/v1/metrics')).idle_connections === 1);
  });
});

describe('query timeout, client disconnect and large results', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService({ DUCKDB_POOL_SIZE: '2', DUCKDB_QUERY_TIMEOUT: '0.3', DUCKDB_LARGE_RESULT_ROWS: '100' });
  });
  afterAll(async () => svc.close());

  it('interrupts a query past the query timeout with 504 and returns a healthy connection', async () => {
    const res = await svc.query({ sql: SLOW_SQL });
    expect(res.status).toBe(504);
    expect(((await res.json()) as Envelope).error).toMatch(/query timeout/);
    await eventually(async () => (await svc.json<Metrics>('/api/v1/metrics')).idle_connections === 2);
    const m = await svc.json<Metrics>('/api/v1/metrics');
    expect(m.total_query_execution_timeouts).toBe(1);
    const ok = await Promise.all([svc.query({ sql: 'SELECT 1 AS a' }), svc.query({ sql: 'SELECT 2 AS a' })]);
    for (const r of ok) expect(r.status).toBe(200);
  });

  it('gives a streaming result cut by the timeout a 504, never a silently short success', async () => {
    const res = await svc.query({ sql: 'SELECT hash(i) h FROM range(1000000000000) t(i) WHERE hash(i) % 100000007 = 0', limit: 1_000_000 });
    expect(res.status).toBe(504);
  });

  it('replaces the connection after a result larger than DUCKDB_LARGE_RESULT_ROWS, keeping the pool size', async () => {
    const before = await svc.json<Metrics>('/api/v1/metrics');
    const small = (await (await svc.query({ sql: 'SELECT * FROM range(100)' })).json()) as Envelope;
    expect(small.row_count).toBe(100);
    expect((await svc.json<Metrics>('/api/v1/metrics')).total_connections_recreated).toBe(before.total_connections_recreated);
    const big = (await (await svc.query({ sql: 'SELECT * FROM range(1000)' })).json()) as Envelope;
    expect(big.row_count).toBe(1000);
    await eventually(async () => {
      const m = await svc.json<Metrics>('/api/v1/metrics');
      return m.total_connections_recreated === Number(before.total_connections_recreated) + 1 && m.idle_connections === 2;
    });
    const m = await svc.json<Metrics>('/api/v1/metrics');
    expect(m.pool_size).toBe(2);
    const qp = await svc.json<{ connections: Array<{ generation: number }> }>('/api/v1/metrics/query-pool');
    expect(qp.connections.map((c) => c.generation).sort()).toEqual([1, 2]);
  });
});

describe('client disconnect (pool of 1, long query timeout)', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService({ DUCKDB_POOL_SIZE: '1', DUCKDB_QUERY_TIMEOUT: '600' });
  });
  afterAll(async () => svc.close());

  it('cancels the running query when the client goes away, freeing the only connection', async () => {
    const ac = new AbortController();
    const p = svc.query({ sql: SLOW_SQL }, { signal: ac.signal }).catch((e: unknown) => e);
    await eventually(async () => (await svc.json<Metrics>('/api/v1/metrics')).active_connections === 1);
    ac.abort();
    await p;
    await eventually(async () => (await svc.json<Metrics>('/api/v1/metrics')).idle_connections === 1, 5000, 'the connection to come back');
    const res = await svc.query({ sql: 'SELECT 7 AS x' });
    expect(await res.json()).toMatchObject({ success: true, data: [[7]] });
  });
});
