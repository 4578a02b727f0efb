// TEST FIXTURE, never part of a production build: the real query service (real DuckDB, real
// HTTP) built through createService's `wrapConnectionFactory` test seam so that its pool can
// really lose a connection, as the incident's broken pool did. After the pool has opened its
// connections, `create()` fails while the fixture says so; a query whose result is larger than
// DUCKDB_LARGE_RESULT_ROWS makes the pool replace that query's connection, the replacement
// fails, and the slot stays out of service (`unavailable_connections` 1) until `heal()`.
import type { DuckDBConnection } from '@duckdb/node-api';
import pino from 'pino';
import { loadConfig } from '../../service/src/config.ts';
import type { ConnectionFactory } from '../../service/src/pool.ts';
import { createService, type Service } from '../../service/src/service.ts';
import { TEST_TOKEN } from './service.ts';

export interface LossyService {
  url: string;
  token: string;
  service: Service;
  /** Runs a large query so the pool recreates a connection, whose recreation then fails. */
  loseOneConnection(): Promise<void>;
  /** Lets connection creation succeed again (the pool retries on its own, backing off up to 5 s). */
  heal(): void;
  metrics(): Promise<Record<string, number | string>>;
  close(): Promise<void>;
}

/** The rows of the large query: above the fixture's DUCKDB_LARGE_RESULT_ROWS (100). */
const LARGE_QUERY = 'SELECT i FROM range(1000) t(i)';

export async function startServiceThatLosesConnections(env: Record<string, string> = {}): Promise<LossyService> {
  const config = loadConfig({
    ARC_API_TOKENS: TEST_TOKEN,
    DUCKDB_THREADS: '1',
    LOG_LEVEL: 'silent',
    DUCKDB_POOL_SIZE: '2',
    DUCKDB_LARGE_RESULT_ROWS: '100',
    ...env,
    PORT: '0',
    HOST: '127.0.0.1',
  });
  let opened = 0;
  let failing = true;
  const wrap = (inner: ConnectionFactory<DuckDBConnection>): ConnectionFactory<DuckDBConnection> => ({
    create: async () => {
      if (opened >= config.poolSize && failing) throw new Error('test fixture: connection creation disabled');
      opened++;
      return inner.create();
    },
    validate: (c) => inner.validate(c),
    destroy: (c) => inner.destroy(c),
  });
  const service = await createService(config, { logger: pino({ level: 'silent' }), defaultMetrics: false, wrapConnectionFactory: wrap });
  const url = await service.app.listen({ port: 0, host: '127.0.0.1' });
  const headers = { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' };
  const metrics = async (): Promise<Record<string, number | string>> =>
    (await (await fetch(`${url}/api/v1/metrics`, { headers })).json()) as Record<string, number | string>;
  return {
    url,
    token: TEST_TOKEN,
    service,
    metrics,
    async loseOneConnection() {
      const res = await fetch(`${url}/api/v1/query`, { method: 'POST', headers, body: JSON.stringify({ sql: LARGE_QUERY }) });
      if (res.status !== 200) throw new Error(`the large query failed: HTTP ${res.status} ${await res.text()}`);
    },
    heal() {
      failing = false;
    },
    close: () => service.close(2000),
  };
}
