import type { DuckDBConnection, DuckDBPreparedStatement } from '@duckdb/node-api';
import { factsOf, type StatementFacts } from './sql-facts.ts';

/** The relations the database held at start (lower case). The read-only endpoint cannot add any. */
export interface Catalog {
  tables: ReadonlySet<string>;
  views: ReadonlySet<string>;
}

/** Table references whose binding reads files, settings or data at prepare time. */
const BOUND_AT_PREPARE = ['TABLE_FUNCTION', 'SHOW_REF', 'PIVOT', 'COLUMN_DATA', 'DELIM_GET'];

/**
 * Whether a statement's plan may be prepared once and run again, judged from DuckDB's own parse
 * (`json_serialize_sql`). A prepared statement keeps what binding found: the files a
 * `read_parquet` glob matched, a view's body over such a glob, a file named as a table, a PIVOT's
 * values. A plan is reused only when every relation it reads is a table of the database (or a
 * CTE of the statement), because tables are scanned anew at each run and DuckDB rebinds a
 * prepared statement when the catalog changes. Anything else, or anything not understood, is
 * run from its text each time.
 */
export function isReusablePlan(serialized: string, catalog: Catalog): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(serialized);
  } catch {
    return false;
  }
  const root = parsed as { error?: boolean; statements?: unknown[] };
  if (root.error !== false || !Array.isArray(root.statements) || root.statements.length !== 1) return false;
  return isReusableStatement(factsOf(root.statements[0]), catalog);
}

/** isReusablePlan for a statement already walked. */
export function isReusableStatement(facts: StatementFacts, catalog: Catalog): boolean {
  if (BOUND_AT_PREPARE.some((t) => facts.refTypes.has(t))) return false;
  return facts.relations.every((ref) => {
    if (ref.catalog !== '' || (ref.schema !== '' && ref.schema !== 'main')) return false;
    const name = ref.name.toLowerCase();
    if (catalog.tables.has(name)) return true;
    return ref.schema === '' && facts.ctes.has(name) && !catalog.views.has(name);
  });
}

/**
 * Prepared statements per connection, least recently used first out. A prepared statement
 * belongs to its connection: the pool's connection factory calls `forget` before it closes one.
 */
export class PlanCache {
  private readonly byConnection = new Map<DuckDBConnection, Map<string, DuckDBPreparedStatement>>();
  readonly perConnection: number;
  hits = 0;
  misses = 0;

  constructor(perConnection: number) {
    this.perConnection = perConnection;
  }

  get enabled(): boolean {
    return this.perConnection > 0;
  }

  get(conn: DuckDBConnection, sql: string): DuckDBPreparedStatement | undefined {
    const plans = this.byConnection.get(conn);
    const p = plans?.get(sql);
    if (plans === undefined || p === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    plans.delete(sql);
    plans.set(sql, p);
    return p;
  }

  set(conn: DuckDBConnection, sql: string, prepared: DuckDBPreparedStatement): void {
    let plans = this.byConnection.get(conn);
    if (plans === undefined) this.byConnection.set(conn, (plans = new Map<string, DuckDBPreparedStatement>()));
    plans.get(sql)?.destroySync();
    plans.delete(sql);
    plans.set(sql, prepared);
    if (plans.size > this.perConnection) {
      const [oldest, p] = plans.entries().next().value!;
      plans.delete(oldest);
      p.destroySync();
    }
  }

  delete(conn: DuckDBConnection, sql: string): void {
    const plans = this.byConnection.get(conn);
    plans?.get(sql)?.destroySync();
    plans?.delete(sql);
  }

  /** Destroys every plan of a connection that is about to close. */
  forget(conn: DuckDBConnection): void {
    const plans = this.byConnection.get(conn);
    if (plans === undefined) return;
    for (const p of plans.values()) p.destroySync();
    this.byConnection.delete(conn);
  }

  /** Plans held, over all connections. */
  get size(): number {
    let n = 0;
    for (const plans of this.byConnection.values()) n += plans.size;
    return n;
  }
}
