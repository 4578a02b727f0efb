import { DuckDBInstance } from '@duckdb/node-api';

/** Writes the rows of `sql` to a Parquet file, with a DuckDB of its own (not the service's). */
export async function writeParquet(path: string, sql: string): Promise<void> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    await c.run(`COPY (${sql}) TO '${path}' (FORMAT parquet)`);
  } finally {
    c.closeSync();
    db.closeSync();
  }
}
