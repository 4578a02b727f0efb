// The service's configuration (service/src/config.ts): the defaults architecture.md promises,
// tokens from the variable and from a mounted Secret file, and one error listing every problem.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@arcops/common';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../service/src/config.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('the service configuration', () => {
  it('defaults to what architecture.md says, frozen', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 8000,
      host: '0.0.0.0',
      duckdbPath: ':memory:',
      dataDir: undefined,
      poolSize: 5,
      poolTimeoutMs: 5000,
      maxQueue: 1000,
      largeResultRows: 5000,
      queryTimeoutMs: 300_000,
      logLevel: 'info',
      threadpoolSize: 9,
      threadpoolSizeDefaulted: true,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it.each<[string, Record<string, string>, Partial<ReturnType<typeof loadConfig>>]>([
    ['seconds become milliseconds', { DUCKDB_POOL_TIMEOUT: '2.5', DUCKDB_QUERY_TIMEOUT: '60' }, { poolTimeoutMs: 2500, queryTimeoutMs: 60_000 }],
    ['the threadpool follows the pool', { DUCKDB_POOL_SIZE: '12' }, { poolSize: 12, threadpoolSize: 16 }],
    ['a threadpool set by hand is kept', { DUCKDB_POOL_SIZE: '5', UV_THREADPOOL_SIZE: '7' }, { threadpoolSize: 7, threadpoolSizeDefaulted: false }],
    ['a DuckDB file or a data folder turns the demo data off', { DUCKDB_PATH: '/var/lib/arc/db.duckdb' }, { demoData: false }],
  ])('%s', (_what, env, expected) => {
    expect(loadConfig(env)).toMatchObject(expected);
  });

  it('reads tokens from ARC_API_TOKENS and from ARC_API_TOKENS_FILE (one per line, comments skipped), once each', () => {
    const dir = mkdtempSync(join(tmpdir(), 'arc-service-config-'));
    dirs.push(dir);
    const file = join(dir, 'tokens');
    writeFileSync(file, '# mounted from a Secret\nfile-token-1\n\nshared-token-1\n');
    expect(loadConfig({ ARC_API_TOKENS: 'env-token-1, shared-token-1', ARC_API_TOKENS_FILE: file }).apiTokens).toEqual(['env-token-1', 'shared-token-1', 'file-token-1']);
  });

  it('refuses bad values with one error that lists every problem', () => {
    const problems = problemsOf({ PORT: '99999', DUCKDB_POOL_SIZE: 'five', ARC_API_TOKENS: 'short', DUCKDB_MEMORY_LIMIT: 'lots', LOG_LEVEL: 'loud' });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('PORT must be between 0 and 65535'),
        expect.stringContaining('DUCKDB_POOL_SIZE must be an integer'),
        expect.stringContaining('API tokens must be at least 8 characters long'),
        expect.stringContaining('DUCKDB_MEMORY_LIMIT must look like 512MB'),
        expect.stringContaining('LOG_LEVEL must be one of'),
      ]),
    );
    expect(problems).toHaveLength(5);
  });

  it('refuses a threadpool too small for the pool, and a token file it cannot read', () => {
    expect(problemsOf({ DUCKDB_POOL_SIZE: '8', UV_THREADPOOL_SIZE: '9' })).toEqual([expect.stringContaining('UV_THREADPOOL_SIZE=9 is too small for DUCKDB_POOL_SIZE=8')]);
    expect(problemsOf({ ARC_API_TOKENS_FILE: '/nonexistent/tokens' })).toEqual([expect.stringContaining('ARC_API_TOKENS_FILE /nonexistent/tokens cannot be read')]);
  });
});
