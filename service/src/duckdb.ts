import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { ServiceConfig } from './config.ts';
import { ConfigError } from './errors.ts';
import type { Catalog, PlanCache } from './plan-cache.ts';
import type { ConnectionFactory } from './pool.ts';

export type DuckDBSettings = Pick<ServiceConfig, 'duckdbPath' | 'dataDir' | 'demoData' | 'memoryLimit' | 'threads' | 'tempDir'> & {
  maxTempSize?: string | undefined;
};

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

function sqlIdent(s: string): string {
  return `"${s.replaceAll('"', '""')}"`;
}

/**
 * Opens the one DuckDB instance the pool shares, then locks it down: no extension install or
 * autoload, no file access outside ARC_DATA_DIR (and DuckDB's own temp directory), no network,
 * and a locked configuration so no query can undo any of it.
 */
export async function openDatabase(settings: DuckDBSettings): Promise<DuckDBInstance> {
  const options: Record<string, string> = {
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
    allow_community_extensions: 'false',
    allow_unsigned_extensions: 'false',
  };
  if (settings.threads !== undefined) options.threads = String(settings.threads);
  if (settings.memoryLimit !== undefined) options.memory_limit = settings.memoryLimit;
  makeFolder('DUCKDB_TEMP_DIR', settings.tempDir);
  let instance: DuckDBInstance;
  try {
    instance = await DuckDBInstance.create(settings.duckdbPath, options);
  } catch (err) {
    throw new ConfigError([`DUCKDB_PATH ${settings.duckdbPath} cannot be opened: ${(err as Error).message}`], { cause: err });
  }
  const setup = await instance.connect();
  try {
    await setup.run(`SET temp_directory = ${sqlString(settings.tempDir)}`);
    // Spilling stops here (the query fails) instead of filling the volume the pod is evicted for.
    if (settings.maxTempSize !== undefined) await setup.run(`SET max_temp_directory_size = ${sqlString(settings.maxTempSize)}`);
    if (settings.demoData) await createDemoData(setup);
    if (settings.dataDir !== undefined) {
      const dataDir = settings.dataDir;
      await createDataViews(setup, dataDir).catch((err: unknown) => {
        throw new ConfigError([`ARC_DATA_DIR ${dataDir} cannot be read: ${(err as Error).message}`], { cause: err });
      });
    }
    const allowed = [settings.dataDir, settings.tempDir].filter((d): d is string => d !== undefined);
    await setup.run(`SET allowed_directories = [${allowed.map((d) => sqlString(d.endsWith('/') ? d : `${d}/`)).join(', ')}]`);
    await setup.run('SET enable_external_access = false');
    await setup.run('SET lock_configuration = true');
  } catch (err) {
    setup.closeSync();
    instance.closeSync();
    throw err;
  }
  setup.closeSync();
  return instance;
}

/**
 * Makes a folder and its missing parents one at a time (Node's recursive mkdirSync never
 * returns for a path under /proc).
 */
function makeFolder(setting: string, path: string): void {
  const fail = (what: string, err?: unknown): ConfigError =>
    new ConfigError([`${setting} ${path} ${what}${err === undefined ? '' : `: ${(err as Error).message}`}`], { cause: err });
  const missing: string[] = [];
  for (let p = path; ; p = dirname(p)) {
    let st;
    try {
      st = statSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fail('cannot be used', err);
    }
    if (st !== undefined) {
      if (!st.isDirectory()) throw fail(`cannot be made: ${p} is not a folder`);
      break;
    }
    missing.unshift(p);
    if (dirname(p) === p) break;
  }
  for (const p of missing) {
    try {
      mkdirSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fail('cannot be made', err);
    }
  }
}

/** A small Arc-like time-series table so the README's examples return real rows. */
export async function createDemoData(conn: DuckDBConnection): Promise<void> {
  await conn.run(`
    CREATE TABLE IF NOT EXISTS cpu AS
    SELECT
      TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (i * 10) SECOND AS time,
      'server' || lpad(CAST(i % 8 AS VARCHAR), 2, '0') AS host,
      ['us-east', 'us-west', 'eu-central', 'ap-south'][(i % 4) + 1] AS region,
      round(20 + 60 * abs(sin(i / 97.0)) + (i % 7), 2)::DOUBLE AS usage_user,
      round(5 + 10 * abs(cos(i / 61.0)), 2)::DOUBLE AS usage_system,
      round(100 - (20 + 60 * abs(sin(i / 97.0)) + (i % 7)) - (5 + 10 * abs(cos(i / 61.0))), 2)::DOUBLE AS usage_idle
    FROM range(0, 10000) t(i)`);
  await conn.run(`
    CREATE TABLE IF NOT EXISTS mem AS
    SELECT
      TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (i * 10) SECOND AS time,
      'server' || lpad(CAST(i % 8 AS VARCHAR), 2, '0') AS host,
      8589934592::BIGINT AS total_bytes,
      (1073741824 + (i % 4096) * 1048576)::BIGINT AS used_bytes
    FROM range(0, 10000) t(i)`);
}

/**
 * One view per measurement under ARC_DATA_DIR: a `name.parquet` file, or a folder holding
 * Parquet files at any depth (Arc's layout), becomes a view `name`. Views read the files at
 * query time, so new files show up without a restart.
 */
export async function createDataViews(conn: DuckDBConnection, dataDir: string): Promise<string[]> {
  const views: string[] = [];
  for (const entry of readdirSync(dataDir, { withFileTypes: true })) {
    const path = join(dataDir, entry.name);
    let glob: string | undefined;
    if (entry.isFile() && entry.name.endsWith('.parquet')) glob = path;
    else if (entry.isDirectory() && containsParquet(path, 4)) glob = join(path, '**', '*.parquet');
    if (glob === undefined) continue;
    const name = basename(entry.name, '.parquet');
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) continue;
    await conn.run(`CREATE OR REPLACE VIEW ${sqlIdent(name)} AS SELECT * FROM read_parquet(${sqlString(glob)}, union_by_name = true)`);
    views.push(name);
  }
  return views;
}

function containsParquet(dir: string, depth: number): boolean {
  if (depth < 0) return false;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.parquet')) return true;
    if (entry.isDirectory() && containsParquet(join(dir, entry.name), depth - 1)) return true;
  }
  return false;
}

/** The tables and views of the main database, as queries name them (lower case). */
export async function readCatalog(instance: DuckDBInstance): Promise<Catalog> {
  const conn = await instance.connect();
  try {
    const names = async (sql: string) =>
      new Set((await conn.runAndReadAll(sql)).getRows().map((r) => String(r[0]).toLowerCase()));
    const main = "database_name = current_database() AND schema_name = 'main'";
    return {
      tables: await names(`SELECT table_name FROM duckdb_tables() WHERE ${main}`),
      views: await names(`SELECT view_name FROM duckdb_views() WHERE ${main} AND NOT internal`),
    };
  } finally {
    conn.closeSync();
  }
}

/** Connections of one DuckDB instance for the pool. */
export function duckdbConnectionFactory(instance: DuckDBInstance, plans?: PlanCache): ConnectionFactory<DuckDBConnection> {
  return {
    create: () => instance.connect(),
    async validate(conn) {
      const result = await conn.run('SELECT 42 AS ok');
      const rows = await result.getRows();
      return rows[0]?.[0] === 42;
    },
    destroy(conn) {
      plans?.forget(conn);
      conn.closeSync();
    },
  };
}
