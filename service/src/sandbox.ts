import { StatementType } from '@duckdb/node-api';

/** Statement types the read-only endpoint runs, judged from DuckDB's own parse. */
const ALLOWED = new Set<number>([StatementType.SELECT, StatementType.EXPLAIN]);

export function isAllowedStatement(type: number): boolean {
  return ALLOWED.has(type);
}

export function statementTypeName(type: number): string {
  return (StatementType as unknown as Record<number, string>)[type] ?? `UNKNOWN(${type})`;
}

/** Remembers the statement type of SQL texts already parsed (a bounded LRU). */
export class StatementTypeCache {
  private readonly map = new Map<string, number>();
  private readonly capacity: number;
  constructor(capacity = 2048) {
    this.capacity = capacity;
  }

  get(sql: string): number | undefined {
    const t = this.map.get(sql);
    if (t !== undefined) {
      this.map.delete(sql);
      this.map.set(sql, t);
    }
    return t;
  }

  set(sql: string, type: number): void {
    if (sql.length > 8192) return;
    this.map.delete(sql);
    this.map.set(sql, type);
    if (this.map.size > this.capacity) {
      const oldest = this.map.keys().next();
      if (oldest.done !== true) this.map.delete(oldest.value);
    }
  }
}
