import pino from 'pino';
import { loadConfig } from '../../service/src/config.ts';
import { createService, type Service } from '../../service/src/service.ts';

export const TEST_TOKEN = 'test-token-0123456789';

/** A query that runs until it is interrupted (hours of work on one thread). */
export const SLOW_SQL = 'SELECT sum(hash(i)) FROM range(1000000000000) t(i)';

export interface RunningService {
  url: string;
  token: string;
  service: Service;
  query(body: unknown, init?: { token?: string | null; signal?: AbortSignal; headers?: Record<string, string> }): Promise<Response>;
  json<T = Record<string, unknown>>(path: string): Promise<T>;
  close(): Promise<void>;
}

/** Starts the real service (real DuckDB, real HTTP socket on 127.0.0.1, random port). */
export async function startService(env: Record<string, string> = {}): Promise<RunningService> {
  const config = loadConfig({ ARC_API_TOKENS: TEST_TOKEN, DUCKDB_THREADS: '1', LOG_LEVEL: 'silent', ...env, PORT: '0', HOST: '127.0.0.1' });
  const logger = pino({ level: config.logLevel });
  const service = await createService(config, { logger, defaultMetrics: false });
  const address = await service.app.listen({ port: 0, host: '127.0.0.1' });
  const token = service.generatedToken ?? config.apiTokens[0]!;
  const query: RunningService['query'] = (body, init = {}) => {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...init.headers };
    const t = init.token === undefined ? token : init.token;
    if (t !== null) headers.authorization = `Bearer ${t}`;
    return fetch(`${address}/api/v1/query`, {
      method: 'POST',
      headers,
      body: typeof body === 'string' ? body : JSON.stringify(body),
      signal: init.signal ?? null,
    });
  };
  return {
    url: address,
    token,
    service,
    query,
    async json<T>(path: string): Promise<T> {
      const res = await fetch(`${address}${path}`, { headers: { authorization: `Bearer ${token}` } });
      return (await res.json()) as T;
    },
    close: () => service.close(2000),
  };
}

/** Polls until `fn` returns true (or throws after `timeoutMs`). */
export async function eventually(fn: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
