import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Service } from '../../service/src/service.ts';

/**
 * Everything a request could change, as one comparable text: on every pooled connection, the
 * catalog it sees (temporary objects included), its settings and variables; of the database,
 * the contents of every table, the attached databases and the log (a loaded extension shows as new
 * functions; secrets and extensions cannot be listed in the locked-down instance); of
 * the data directory, every file's path, size, bytes and mtime.
 */
export async function databaseState(service: Service, dataDir?: string): Promise<string> {
  const leases = await Promise.all(Array.from({ length: service.pool.size }, () => service.pool.acquire('critical')));
  try {
    const perConnection: unknown[] = [];
    for (const lease of leases) perConnection.push(await connectionState(lease.connection));
    return JSON.stringify({ perConnection, files: dataDir === undefined ? [] : folderState(dataDir) }, null, 1);
  } finally {
    for (const lease of leases) lease.release('reuse');
  }
}

const QUERIES: Readonly<Record<string, string>> = {
  tables: 'SELECT database_name, schema_name, table_name, temporary, sql FROM duckdb_tables() ORDER BY ALL',
  views: 'SELECT database_name, schema_name, view_name, temporary, sql FROM duckdb_views() WHERE NOT internal ORDER BY ALL',
  functions: "SELECT count(*), sum(hash(database_name, schema_name, function_name, function_type, coalesce(macro_definition, ''))) FROM duckdb_functions()",
  types: 'SELECT database_name, schema_name, type_name FROM duckdb_types() WHERE NOT internal ORDER BY ALL',
  sequences: 'SELECT * FROM duckdb_sequences() ORDER BY ALL',
  indexes: 'SELECT database_name, table_name, index_name FROM duckdb_indexes() ORDER BY ALL',
  schemas: 'SELECT database_name, schema_name FROM duckdb_schemas() ORDER BY ALL',
  databases: 'SELECT database_name, path, readonly FROM duckdb_databases() ORDER BY ALL',
  settings: 'SELECT name, value FROM duckdb_settings() ORDER BY name',
  variables: 'SELECT name, value FROM duckdb_variables() ORDER BY name',
  logs: 'SELECT count(*) FROM duckdb_logs',
  current: 'SELECT current_database(), current_schema()',
};

async function connectionState(conn: DuckDBConnection): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [name, sql] of Object.entries(QUERIES)) out[name] = await rows(conn, sql);
  const tables = (await conn.runAndReadAll("SELECT table_name FROM duckdb_tables() WHERE database_name = 'memory' AND NOT temporary")).getRows();
  for (const [table] of tables) {
    const t = `"${String(table).replaceAll('"', '""')}"`;
    out[`data:${String(table)}`] = await rows(conn, `SELECT count(*), sum(hash(t)) FROM ${t} t`);
  }
  return out;
}

async function rows(conn: DuckDBConnection, sql: string): Promise<string> {
  const reader = await conn.runAndReadAll(sql);
  return JSON.stringify(reader.getRows(), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

function folderState(dir: string): Array<[string, number, string, number]> {
  const out: Array<[string, number, string, number]> = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        walk(p);
        continue;
      }
      const st = statSync(p);
      out.push([relative(dir, p), st.size, createHash('sha256').update(readFileSync(p)).digest('hex'), st.mtimeMs]);
    }
  };
  walk(dir);
  return out.sort((a, b) => a[0].localeCompare(b[0]));
}
