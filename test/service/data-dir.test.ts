import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeParquet } from '../support/parquet.ts';
import { type RunningService, startService } from '../support/service.ts';

describe('ARC_DATA_DIR: Parquet files are queryable, nothing else is', () => {
  let dir: string;
  let svc: RunningService;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'arc-data-'));
    mkdirSync(join(dir, 'weather', '2026', '01'), { recursive: true });
    await writeParquet(join(dir, 'weather', '2026', '01', 'a.parquet'), "SELECT 'oslo' AS city, 1.5 AS temp");
    await writeParquet(join(dir, 'sensors.parquet'), 'SELECT range AS id FROM range(5)');
    svc = await startService({ ARC_DATA_DIR: dir });
  });
  afterAll(async () => {
    await svc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('exposes each measurement as a view and reads files by path', async () => {
    const a = await (await svc.query({ sql: 'SELECT city, temp FROM weather' })).json();
    expect(a).toMatchObject({ success: true, data: [['oslo', 1.5]] });
    const b = await (await svc.query({ sql: 'SELECT count(*) FROM sensors' })).json();
    expect(b).toMatchObject({ data: [[5]] });
    const c = await (await svc.query({ sql: `SELECT count(*) FROM read_parquet('${dir}/weather/**/*.parquet')` })).json();
    expect(c).toMatchObject({ data: [[1]] });
  });

  it('sees files added after start without a restart', async () => {
    mkdirSync(join(dir, 'weather', '2026', '02'), { recursive: true });
    await writeParquet(join(dir, 'weather', '2026', '02', 'b.parquet'), "SELECT 'rome' AS city, 12.0 AS temp");
    const r = await (await svc.query({ sql: 'SELECT city FROM weather ORDER BY city' })).json();
    expect(r).toMatchObject({ data: [['oslo'], ['rome']] });
  });

  it('starts without demo data when a data dir is given', async () => {
    const res = await svc.query({ sql: 'SELECT * FROM cpu' });
    expect(res.status).toBe(400);
  });

  it('refuses paths that climb out of the data dir', async () => {
    const res = await svc.query({ sql: `SELECT * FROM read_csv('${dir}/../../etc/passwd')` });
    expect(res.status).toBe(403);
  });
});
