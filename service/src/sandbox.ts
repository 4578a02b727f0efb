import { StatementType } from '@duckdb/node-api';

/** Statement types the read-only endpoint runs, judged from DuckDB's own parse. */
const ALLOWED = new Set<number>([StatementType.SELECT, StatementType.EXPLAIN]);

export function isAllowedStatement(type: number): boolean {
  return ALLOWED.has(type);
}

export function statementTypeName(type: number): string {
  return (StatementType as unknown as Record<number, string>)[type] ?? `UNKNOWN(${type})`;
}

/** What is known of a SQL text already parsed. */
export interface StatementInfo {
  readonly type: number;
  /** Whether its plan may be prepared once and reused; undefined until it is seen again. */
  reusable: boolean | undefined;
}

/** Remembers what DuckDB's parse said of SQL texts already seen (a bounded LRU). */
export class StatementTypeCache {
  private readonly map = new Map<string, StatementInfo>();
  private readonly capacity: number;
  constructor(capacity = 2048) {
    this.capacity = capacity;
  }

  get(sql: string): StatementInfo | undefined {
    const t = this.map.get(sql);
    if (t !== undefined) {
      this.map.delete(sql);
      this.map.set(sql, t);
    }
    return t;
  }

  set(sql: string, type: number): void {
    if (sql.length > 8192) return;
    if (this.map.get(sql)?.type === type) return;
    this.map.delete(sql);
    this.map.set(sql, { type, reusable: undefined });
    if (this.map.size > this.capacity) {
      const oldest = this.map.keys().next();
      if (oldest.done !== true) this.map.delete(oldest.value);
    }
  }
}
