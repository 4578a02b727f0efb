// DUCKDB_MAX_TEMP_SIZE: DuckDB may spill this much to its temp folder and no more (the operator
// sizes the pod's /tmp volume from the same figure, operator/src/plan.ts).
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../service/src/config.ts';
import { openDatabase } from '../../service/src/duckdb.ts';

const TEMP = '/tmp/arc-duckdb-temp-limit-test';

describe('DUCKDB_MAX_TEMP_SIZE', () => {
  afterAll(() => rmSync(TEMP, { recursive: true, force: true }));

  it('sets max_temp_directory_size on the real DuckDB', async () => {
    const config = loadConfig({ DUCKDB_MAX_TEMP_SIZE: '64MiB', DUCKDB_TEMP_DIR: TEMP, ARC_API_TOKENS: 'token-0123456789' });
    expect(config.maxTempSize).toBe('64MiB');
    const instance = await openDatabase({ ...config, demoData: false, threads: 1 });
    try {
      const conn = await instance.connect();
      const rows = (await conn.runAndReadAll("SELECT current_setting('max_temp_directory_size')")).getRows();
      expect(rows).toEqual([['64.0 MiB']]);
      conn.closeSync();
    } finally {
      instance.closeSync();
    }
  });

  it('refuses a value DuckDB would not take, at boot', () => {
    expect(() => loadConfig({ DUCKDB_MAX_TEMP_SIZE: 'lots', ARC_API_TOKENS: 'token-0123456789' })).toThrow(/DUCKDB_MAX_TEMP_SIZE must look like/);
  });
});
