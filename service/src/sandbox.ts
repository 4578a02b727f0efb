import { StatementType } from '@duckdb/node-api';
import type { Judgement } from './guard.ts';

/**
 * Statement types a prepared statement may have here. The guard (guard.ts) has already judged
 * the text before it is prepared; this is the second lock, on DuckDB's bound statement type.
 */
const ALLOWED = new Set<number>([StatementType.SELECT, StatementType.EXPLAIN]);

export function isAllowedStatement(type: number): boolean {
  return ALLOWED.has(type);
}

export function statementTypeName(type: number): string {
  return (StatementType as unknown as Record<number, string>)[type] ?? `UNKNOWN(${type})`;
}

/** Remembers the guard's judgement of SQL texts already seen (a bounded LRU). */
export class JudgementCache {
  private readonly map = new Map<string, Judgement>();
  private readonly capacity: number;
  constructor(capacity = 2048) {
    this.capacity = capacity;
  }

  get(sql: string): Judgement | undefined {
    const j = this.map.get(sql);
    if (j !== undefined) {
      this.map.delete(sql);
      this.map.set(sql, j);
    }
    return j;
  }

  set(sql: string, judgement: Judgement): void {
    if (sql.length > 8192) return;
    this.map.delete(sql);
    this.map.set(sql, judgement);
    if (this.map.size > this.capacity) {
      const oldest = this.map.keys().next();
      if (oldest.done !== true) this.map.delete(oldest.value);
    }
  }
}
