import type { DuckDBConnection } from '@duckdb/node-api';
import { CLASSIFIED } from './sql-functions.ts';

/**
 * What a function or system view of DuckDB may do, as reviewed for the read-only query API.
 * Only `read` runs. The review of every function DuckDB exposes is in sql-functions.ts,
 * generated from DuckDB's own catalog (`npm run sql:functions`).
 */
export type SqlClass = 'read' | 'state' | 'reveal' | 'executes' | 'unsafe' | 'internal' | 'pragma' | 'unreviewed';

export const SQL_CLASSES: readonly SqlClass[] = ['read', 'state', 'reveal', 'executes', 'unsafe', 'internal', 'pragma', 'unreviewed'];

/** Why a class is refused, as the end of "X is not allowed: it ...". */
export const REFUSED_BECAUSE: Readonly<Record<Exclude<SqlClass, 'read'>, string>> = {
  state: 'changes the state of the database, its settings, its logs or its files',
  reveal: "can show other clients' queries, the server's settings or its secrets",
  executes: 'runs or plans SQL given as text, which the guard cannot judge',
  unsafe: 'reads raw memory addresses',
  internal: 'is an internal test function of DuckDB',
  pragma: 'is reached only through PRAGMA, which the read-only API refuses',
  unreviewed: 'is new in this DuckDB version and has not been reviewed for the read-only API yet',
};

/** The kinds of named things the catalog lists: function types of duckdb_functions(), and views. */
export type SqlEntryKind = 'scalar' | 'aggregate' | 'macro' | 'table' | 'table_macro' | 'pragma' | 'view';

export interface SqlCatalogEntry {
  readonly kind: SqlEntryKind;
  /** Functions: their name; views: `schema.name`. */
  readonly name: string;
}

/** The key an entry has in sql-functions.ts. */
export function entryKey(e: SqlCatalogEntry): string {
  return `${e.kind}:${e.name}`;
}

/** Every function DuckDB exposes, and its internal (system) views. */
export async function readSqlCatalog(conn: DuckDBConnection): Promise<SqlCatalogEntry[]> {
  const rows = (
    await conn.runAndReadAll(`
      SELECT DISTINCT function_type, function_name FROM duckdb_functions()
      UNION
      SELECT DISTINCT 'view', schema_name || '.' || view_name FROM duckdb_views() WHERE internal
      ORDER BY 1, 2`)
  ).getRows();
  return rows.map((r) => ({ kind: String(r[0]) as SqlEntryKind, name: String(r[1]) }));
}

export interface Refusal {
  readonly name: string;
  readonly class: Exclude<SqlClass, 'read'>;
}

const RANK: Readonly<Record<SqlClass, number>> = {
  read: 0,
  pragma: 1,
  internal: 2,
  reveal: 3,
  state: 4,
  executes: 5,
  unsafe: 6,
  unreviewed: 7,
};

function worse(a: SqlClass | undefined, b: SqlClass): SqlClass {
  return a === undefined || RANK[b] > RANK[a] ? b : a;
}

/**
 * The runtime form of the review: which names a statement may call or read. Built from the
 * catalog of the DuckDB that runs, so that a function this DuckDB has and the review lacks is
 * refused (fail closed), never let through.
 */
export class SqlPolicy {
  private readonly functions = new Map<string, SqlClass>();
  private readonly relations = new Map<string, SqlClass>();
  /** Entries of the running DuckDB that the review does not list. */
  readonly unreviewed: readonly string[];

  constructor(entries: readonly SqlCatalogEntry[], classified: Readonly<Record<string, SqlClass>> = CLASSIFIED) {
    const unreviewed: string[] = [];
    for (const e of entries) {
      let cls = classified[entryKey(e)];
      if (cls === undefined) {
        unreviewed.push(entryKey(e));
        cls = 'unreviewed';
      }
      if (e.kind === 'view') {
        const name = e.name.slice(e.name.indexOf('.') + 1).toLowerCase();
        this.relations.set(name, worse(this.relations.get(name), cls));
      } else if (e.kind !== 'pragma') {
        // PRAGMA functions are reached only by PRAGMA statements, which never run here; a
        // table or scalar function of the same name is judged on its own.
        const name = e.name.toLowerCase();
        this.functions.set(name, worse(this.functions.get(name), cls));
      }
    }
    this.unreviewed = unreviewed;
  }

  static async load(conn: DuckDBConnection): Promise<SqlPolicy> {
    return new SqlPolicy(await readSqlCatalog(conn));
  }

  /** Undefined when the function may run (or DuckDB has no function of that name). */
  refuseFunction(name: string): Refusal | undefined {
    const cls = this.functions.get(name.toLowerCase());
    return cls === undefined || cls === 'read' ? undefined : { name, class: cls };
  }

  /** Whether a function or a relation of this name is refused (names are case-insensitive). */
  isRefusedName(name: string): boolean {
    const f = this.functions.get(name);
    const r = this.relations.get(name);
    return (f !== undefined && f !== 'read') || (r !== undefined && r !== 'read');
  }

  /** Undefined when the relation may be read (a table or view of ours, a file, a CTE). */
  refuseRelation(name: string): Refusal | undefined {
    const cls = this.relations.get(name.toLowerCase());
    return cls === undefined || cls === 'read' ? undefined : { name, class: cls };
  }
}
