import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { eventually, SLOW_SQL, startService } from '../support/service.ts';

/** A POST on its own keep-alive agent, like a client that keeps the connection open. */
function post(url: string, token: string, sql: string, signal?: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ sql });
    const req = request(
      `${url}/api/v1/query`,
      { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, connection: 'keep-alive' }, signal },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('shutdown with keep-alive clients', () => {
  it('closes promptly even when clients keep idle connections open after a 503 and an abort', async () => {
    const svc = await startService({ DUCKDB_POOL_SIZE: '1', DUCKDB_POOL_TIMEOUT: '0.3' });
    const holder = new AbortController();
    const held = post(svc.url, svc.token, SLOW_SQL, holder.signal).catch(() => 0);
    await eventually(async () => (await svc.json<{ active_connections: number }>('/api/v1/metrics')).active_connections === 1);
    expect(await post(svc.url, svc.token, 'SELECT 1')).toBe(503);
    holder.abort();
    await held;
    await eventually(async () => (await svc.json<{ idle_connections: number }>('/api/v1/metrics')).idle_connections === 1);
    const started = Date.now();
    await svc.service.close(2000);
    expect(Date.now() - started).toBeLessThan(2500);
  });
});
