import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, type RunningService, SLOW_SQL, startService } from '../support/service.ts';

const A = 'token-of-team-a-0123';
const B = 'token-of-team-b-0123';

interface Tracked {
  id: string;
  sql: string | null;
  status: string;
  row_count?: number;
  token_id: string;
}

describe('running queries: list them, cancel one (GET/DELETE /api/v1/queries, as Arc has)', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService({ ARC_API_TOKENS: `${A},${B}` });
  });
  afterAll(async () => svc.close());

  const call = async (method: string, path: string, token: string) => {
    const res = await fetch(`${svc.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const metrics = () => svc.json<Record<string, number>>('/api/v1/metrics');

  it('names each query in X-Arc-Query-ID and keeps it in the history with its row count', async () => {
    const res = await svc.query({ sql: 'SELECT * FROM range(7)' }, { token: A });
    const id = res.headers.get('x-arc-query-id');
    expect(id).toMatch(/^[0-9a-f-]{12}$/);
    await res.json();
    const h = await call('GET', '/api/v1/queries/history?limit=5', A);
    expect((h.body.queries as Tracked[])[0]).toMatchObject({ id, status: 'completed', row_count: 7, sql: 'SELECT * FROM range(7)' });
    expect((await call('GET', `/api/v1/queries/${id}`, A)).body).toMatchObject({ success: true, query: { id, status: 'completed' } });
    expect((await call('GET', '/api/v1/queries/history?limit=0', A)).status).toBe(400);
  });

  it('shows a running query, its SQL only to its own token, and lets only that token cancel it; the connection comes back healthy', async () => {
    const slow = svc.query({ sql: SLOW_SQL }, { token: A });
    await eventually(async () => ((await call('GET', '/api/v1/queries/active', A)).body.count as number) === 1, 5000, 'the query to show');
    const mine = (await call('GET', '/api/v1/queries', A)).body.queries as Tracked[];
    const theirs = (await call('GET', '/api/v1/queries/active', B)).body.queries as Tracked[];
    expect(mine[0]).toMatchObject({ sql: SLOW_SQL, status: 'running' });
    expect(theirs[0]).toMatchObject({ id: mine[0]!.id, sql: null, status: 'running' });
    expect(JSON.stringify(theirs)).not.toContain(A);

    expect(await call('DELETE', `/api/v1/queries/${mine[0]!.id}`, B)).toMatchObject({ status: 403 });
    expect(await call('DELETE', `/api/v1/queries/${mine[0]!.id}`, A)).toMatchObject({ status: 200, body: { success: true, message: 'Query cancelled' } });
    const res = await slow;
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ success: false, code: 'ARC_ERR_QUERY_CANCELLED' });
    // Checked before reuse (unavailable meanwhile), then idle: the pool keeps its five.
    await eventually(async () => (await metrics()).idle_connections === 5, 5000, 'the connection back, checked');
    expect(await metrics()).toMatchObject({ active_connections: 0, unavailable_connections: 0 });
    expect((await svc.query({ sql: 'SELECT 1 AS one' }, { token: A })).status).toBe(200);

    expect((await call('GET', `/api/v1/queries/${mine[0]!.id}`, A)).body).toMatchObject({ query: { status: 'cancelled' } });
    expect(await call('DELETE', `/api/v1/queries/${mine[0]!.id}`, A)).toMatchObject({ status: 409, body: { error: 'Query already cancelled' } });
    expect(await call('DELETE', '/api/v1/queries/nosuchquery1', A)).toMatchObject({ status: 404 });
  });

  it('cancels an answer in the middle of its stream: the response breaks', async () => {
    const res = await svc.query({ sql: 'SELECT range AS i FROM range(200000000)' }, { token: A });
    const id = res.headers.get('x-arc-query-id')!;
    const reader = res.body!.getReader();
    await reader.read();
    expect(await call('DELETE', `/api/v1/queries/${id}`, A)).toMatchObject({ status: 200 });
    await expect((async () => {
      for (;;) if ((await reader.read()).done) return 'complete';
    })()).rejects.toThrow();
    await eventually(async () => (await metrics()).active_connections === 0, 5000, 'the connection back');
    expect((await call('GET', `/api/v1/queries/${id}`, A)).body).toMatchObject({ query: { status: 'cancelled' } });
  });
});
