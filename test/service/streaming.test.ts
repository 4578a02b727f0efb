import { request, type IncomingMessage } from 'node:http';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { negotiateEncoding } from '../../service/src/compress.ts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually, type RunningService, startService } from '../support/service.ts';

type Metrics = Record<string, number>;

interface Raw {
  res: IncomingMessage;
  /** Resolves with the whole body, or rejects when the response breaks before its end. */
  body: Promise<Buffer>;
}

/** POSTs a query on a socket of its own and hands back the response as it arrives. */
function post(svc: RunningService, body: unknown, extraHeaders: Record<string, string> = {}): Promise<Raw> {
  const url = new URL('/api/v1/query', svc.url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent: false, headers: { 'content-type': 'application/json', authorization: `Bearer ${svc.token}`, ...extraHeaders } },
      (res) => {
        const chunks: Buffer[] = [];
        const done = new Promise<Buffer>((ok, broken) => {
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => ok(Buffer.concat(chunks)));
          res.on('error', broken);
          res.on('aborted', () => broken(new Error('response aborted')));
        });
        done.catch(() => undefined);
        resolve({ res, body: done });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** Reads a response to its end without keeping it: its size and its last 200 bytes. */
async function drain(r: Raw): Promise<{ bytes: number; tail: string }> {
  let bytes = 0;
  let tail = '';
  r.res.removeAllListeners('data');
  r.res.on('data', (c: Buffer) => {
    bytes += c.length;
    tail = (tail + c.toString('latin1')).slice(-200);
  });
  r.res.resume();
  await new Promise<void>((ok, broken) => {
    r.res.on('end', ok);
    r.res.on('error', broken);
  });
  return { bytes, tail };
}

describe('answers of any size, streamed', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService();
  });
  afterAll(async () => svc.close());
  afterEach(async () => {
    await eventually(async () => (await svc.json<Metrics>('/api/v1/metrics')).active_connections === 0, 10_000, 'every connection back');
  });

  it('sends a small answer whole, with its length, and a large one in chunks that parse to the same envelope', async () => {
    const small = await post(svc, { sql: 'SELECT 42 AS x' });
    expect(small.res.headers['content-length']).toBeDefined();
    expect(JSON.parse((await small.body).toString())).toMatchObject({ success: true, columns: ['x'], data: [[42]], row_count: 1, truncated: false });

    const recreated = (await svc.json<Metrics>('/api/v1/metrics')).total_connections_recreated!;
    const large = await post(svc, { sql: 'SELECT range AS i FROM range(300000)' });
    expect(large.res.statusCode).toBe(200);
    expect(large.res.headers['transfer-encoding']).toBe('chunked');
    const env = JSON.parse((await large.body).toString()) as { success: boolean; row_count: number; data: number[][]; error: null };
    expect(env).toMatchObject({ success: true, row_count: 300000, error: null });
    expect(env.data.length).toBe(300000);
    expect(env.data[299999]).toEqual([299999]);
    // A streamed answer over DUCKDB_LARGE_RESULT_ROWS still gets its connection replaced.
    await eventually(async () => (await svc.json<Metrics>('/api/v1/metrics')).total_connections_recreated === recreated + 1, 5000, 'the connection replaced');
  });

  it('streams CSV too', async () => {
    const r = await post(svc, { sql: 'SELECT range AS i FROM range(100000)', format: 'csv' });
    const text = (await r.body).toString();
    expect(r.res.headers['content-type']).toMatch(/text\/csv/);
    expect(text.startsWith('i\r\n0\r\n1\r\n')).toBe(true);
    expect(text.split('\r\n')).toHaveLength(100002);
  });

  it('reads from DuckDB only as fast as a slow client takes the answer: one connection, bounded memory', async () => {
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    // ~220 MB of JSON; the client takes nothing for a second, then all of it.
    const r = await post(svc, { sql: "SELECT range AS i, repeat('x', 100) AS pad FROM range(2000000)" });
    r.res.pause();
    await new Promise((ok) => setTimeout(ok, 1000));
    expect((await svc.json<Metrics>('/api/v1/metrics')).active_connections).toBe(1);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(64 * 1024 * 1024);
    const { bytes, tail } = await drain(r);
    expect(bytes).toBeGreaterThan(200_000_000);
    expect(tail).toMatch(/"row_count":2000000,"truncated":false,/);
  });

  it('gives the connection back at once when the client goes away in the middle of the answer', async () => {
    const r = await post(svc, { sql: 'SELECT range AS i FROM range(100000000)' });
    await new Promise<void>((ok) => r.res.once('data', () => ok()));
    r.res.destroy();
    await eventually(async () => (await svc.json<Metrics>('/api/v1/metrics')).active_connections === 0, 3000, 'the connection back');
    const prom = await (await fetch(`${svc.url}/metrics`)).text();
    expect(prom).toMatch(/arc_service_query_duration_seconds_count\{outcome="aborted"\} [1-9]/);
  });

  it('says when `limit` cut the answer, and only then', async () => {
    const cut = await post(svc, { sql: 'SELECT range AS i FROM range(100)', limit: 10 });
    expect(cut.res.headers['x-truncated']).toBe('true');
    expect(JSON.parse((await cut.body).toString())).toMatchObject({ row_count: 10, truncated: true });
    const whole = await post(svc, { sql: 'SELECT range AS i FROM range(10)', limit: 10 });
    expect(whole.res.headers['x-truncated']).toBeUndefined();
    expect(JSON.parse((await whole.body).toString())).toMatchObject({ row_count: 10, truncated: false });
  });

  it('streams an answer larger than the largest string V8 can hold (512 MiB)', { timeout: 180_000 }, async () => {
    const r = await post(svc, { sql: "SELECT range AS i, repeat('x', 40) AS pad FROM range(11000000)" });
    const { bytes, tail } = await drain(r);
    expect(bytes).toBeGreaterThan(512 * 1024 * 1024);
    expect(tail).toMatch(/\],"row_count":11000000,"truncated":false,.*"error":null\}$/);
  });
});

describe('compression on request (Accept-Encoding), whole and streamed', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService({ ARC_MAX_RESULT_BYTES: '3000000' });
  });
  afterAll(async () => svc.close());

  it.each([
    ['gzip', 'gzip'],
    ['gzip, zstd', 'zstd'],
    ['zstd;q=0, gzip', 'gzip'],
    ['x-gzip', 'gzip'],
    ['*', 'zstd'],
    ['br, identity', undefined],
    ['gzip;q=0', undefined],
    ['', undefined],
  ])('answers Accept-Encoding %j with %s (pure)', (header, encoding) => {
    expect(negotiateEncoding(header)).toBe(encoding);
  });

  it.each([
    ['gzip', gunzipSync],
    ['zstd', zstdDecompressSync],
  ] as const)('compresses a whole answer and a streamed one with %s', async (encoding, decompress) => {
    const small = await post(svc, { sql: 'SELECT 1 AS one' }, { 'accept-encoding': encoding });
    expect(small.res.headers['content-encoding']).toBeUndefined();
    expect(small.res.headers.vary).toMatch(/accept-encoding/i);
    await small.body;

    const whole = await post(svc, { sql: 'SELECT range AS i FROM range(2000)' }, { 'accept-encoding': encoding });
    expect(whole.res.headers['content-encoding']).toBe(encoding);
    expect(JSON.parse(decompress(await whole.body).toString())).toMatchObject({ row_count: 2000 });

    const streamed = await post(svc, { sql: 'SELECT range AS i FROM range(300000)' }, { 'accept-encoding': encoding });
    expect(streamed.res.headers['content-encoding']).toBe(encoding);
    expect(streamed.res.headers['transfer-encoding']).toBe('chunked');
    const raw = await streamed.body;
    const text = decompress(raw).toString();
    expect(raw.length).toBeLessThan(text.length / 2);
    expect(JSON.parse(text)).toMatchObject({ row_count: 300000, error: null });
  });

  it('breaks a compressed stream that fails after its first byte', async () => {
    const r = await post(svc, { sql: "SELECT range AS i, md5(range::VARCHAR) AS h FROM range(1000000)" }, { 'accept-encoding': 'gzip' });
    expect(r.res.statusCode).toBe(200);
    await expect(r.body).rejects.toThrow();
    await eventually(async () => (await svc.json<Metrics>('/api/v1/metrics')).active_connections === 0, 3000, 'the connection back');
  });
});

describe('a query timeout in the middle of an answer (DUCKDB_QUERY_TIMEOUT=3)', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService({ DUCKDB_QUERY_TIMEOUT: '3' });
  });
  afterAll(async () => svc.close());

  it('breaks the response, never completes it, when the query times out in the middle of the answer', async () => {
    const before = await svc.json<Metrics>('/api/v1/metrics');
    const r = await post(svc, { sql: 'SELECT range AS i, repeat(\'x\', 100) AS pad FROM range(5000000)' });
    expect(r.res.statusCode).toBe(200);
    r.res.pause(); // a client that stalls: the 3 s query timeout must still end it
    await new Promise((ok) => setTimeout(ok, 3500));
    r.res.resume();
    await expect(r.body).rejects.toThrow();
    const after = await svc.json<Metrics>('/api/v1/metrics');
    expect(after.total_query_execution_timeouts).toBe(before.total_query_execution_timeouts! + 1);
    expect(after.total_queries_executed).toBe(before.total_queries_executed);
  });
});

describe('limits a platform team sets (ARC_MAX_RESULT_ROWS, ARC_MAX_RESULT_BYTES)', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService({ ARC_MAX_RESULT_ROWS: '1000', ARC_MAX_RESULT_BYTES: '2000000' });
  });
  afterAll(async () => svc.close());

  it('answers within the limits as usual', async () => {
    const r = await post(svc, { sql: 'SELECT range AS i FROM range(1000)' });
    expect(JSON.parse((await r.body).toString())).toMatchObject({ row_count: 1000 });
  });

  it('answers 413 when the limit is passed before the first byte', async () => {
    const r = await post(svc, { sql: 'SELECT range AS i FROM range(1001)' });
    expect(r.res.statusCode).toBe(413);
    const body = JSON.parse((await r.body).toString()) as { success: boolean; error: string; code: string };
    expect(body).toMatchObject({ success: false, code: 'ARC_ERR_RESULT_TOO_LARGE' });
    expect(body.error).toMatch(/more than 1000 rows \(ARC_MAX_RESULT_ROWS\)/);
  });

  it('lets `limit` keep an answer under the row limit', async () => {
    const r = await post(svc, { sql: 'SELECT range AS i FROM range(1000000)', limit: 5 });
    expect(JSON.parse((await r.body).toString())).toMatchObject({ row_count: 5, truncated: true });
  });
});

describe('a byte limit (ARC_MAX_RESULT_BYTES)', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService({ ARC_MAX_RESULT_BYTES: '2000000' });
  });
  afterAll(async () => svc.close());

  it('answers 413 when one chunk of the answer passes it before the first byte', async () => {
    const r = await post(svc, { sql: "SELECT repeat('x', 3000000) AS big" });
    expect(r.res.statusCode).toBe(413);
    expect(JSON.parse((await r.body).toString())).toMatchObject({ code: 'ARC_ERR_RESULT_TOO_LARGE' });
  });

  it('breaks the response when the answer passes it after the first byte, and counts a failure', async () => {
    const before = await svc.json<Metrics>('/api/v1/metrics');
    const r = await post(svc, { sql: 'SELECT range AS i FROM range(1000000)' });
    expect(r.res.statusCode).toBe(200);
    await expect(r.body).rejects.toThrow();
    await eventually(async () => (await svc.json<Metrics>('/api/v1/metrics')).active_connections === 0, 3000, 'the connection back');
    const after = await svc.json<Metrics>('/api/v1/metrics');
    expect(after.total_queries_failed).toBe(before.total_queries_failed! + 1);
    expect(after.total_queries_executed).toBe(before.total_queries_executed);
  });
});
