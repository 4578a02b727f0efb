// The floor for the query benchmark: a bare fastify route running the same SQL on a plain
// array of DuckDB connections (round-robin, so several requests may share a connection at
// once), with the fastest read path found (one materialized query, chunks read in place):
// no auth, no validation, no pool, no sandbox, no metrics. Listens on 127.0.0.1; prints its
// port on stdout.
import { DuckDBInstance, JsonDuckDBValueConverter } from '@duckdb/node-api';
import Fastify from 'fastify';

const size = Number(process.argv[2] ?? 5);
// 'reader': runAndReadAll + getRowsJson (the documented way); 'chunks': one materialized
// query, chunks converted in place (no further threadpool round trips); 'exclusive': the same
// as 'chunks' but each connection serves one request at a time (a free list and a FIFO of
// waiters: a pool with no features), which is what our pool guarantees; 'prepared': the same
// as 'exclusive' with each SQL text prepared once per connection and reused (a plan cache with
// no features).
const mode = process.argv[3] ?? 'chunks';
const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
const conns = await Promise.all(Array.from({ length: size }, () => instance.connect()));
let next = 0;
type Conn = (typeof conns)[number];
const free: Conn[] = [...conns];
const waiting: Array<(c: Conn) => void> = [];

const plans = new Map<Conn, Map<string, Awaited<ReturnType<Conn['prepare']>>>>(conns.map((c) => [c, new Map()]));

async function readChunks(conn: Conn, sql: string): Promise<unknown[]> {
  let result;
  if (mode === 'prepared') {
    const cache = plans.get(conn)!;
    let p = cache.get(sql);
    if (p === undefined) cache.set(sql, (p = await conn.prepare(sql)));
    result = await p.run();
  } else result = await conn.run(sql);
  const data: unknown[] = [];
  for (let i = 0; i < result.chunkCount; i++) data.push(...result.getChunk(i).convertRows(JsonDuckDBValueConverter));
  return data;
}

const app = Fastify();
app.post('/query', async (req) => {
  const { sql } = req.body as { sql: string };
  if (mode === 'exclusive' || mode === 'prepared') {
    const conn = free.pop() ?? (await new Promise<Conn>((resolve) => waiting.push(resolve)));
    try {
      return { data: await readChunks(conn, sql) };
    } finally {
      const w = waiting.shift();
      if (w !== undefined) w(conn);
      else free.push(conn);
    }
  }
  const conn = conns[next++ % size]!;
  if (mode === 'reader') {
    const reader = await conn.runAndReadAll(sql);
    return { data: reader.getRowsJson() };
  }
  return { data: await readChunks(conn, sql) };
});
await app.listen({ port: 0, host: '127.0.0.1' });
const addr = app.server.address();
process.stdout.write(`${typeof addr === 'object' && addr !== null ? addr.port : 0}\n`);
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
