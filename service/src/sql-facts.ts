/**
 * What one statement names, read from DuckDB's serialized parse tree (`json_serialize_sql`):
 * the guard judges the functions and relations, the plan cache the relations and CTEs.
 */
export interface StatementFacts {
  /** Every function, aggregate, window function, macro and table function called (lower case). */
  readonly functions: ReadonlySet<string>;
  /** Every relation read by name: BASE_TABLE references and the targets of SHOW/DESCRIBE/SUMMARIZE. */
  readonly relations: ReadonlyArray<{ catalog: string; schema: string; name: string }>;
  /** Names the statement's CTEs define (lower case). */
  readonly ctes: ReadonlySet<string>;
  /** Table references whose binding reads files, settings or data (see plan-cache.ts). */
  readonly refTypes: ReadonlySet<string>;
}

/** Walks DuckDB's serialized parse tree of one statement. */
export function factsOf(statement: unknown): StatementFacts {
  const functions = new Set<string>();
  const relations: Array<{ catalog: string; schema: string; name: string }> = [];
  const ctes = new Set<string>();
  const refTypes = new Set<string>();
  const stack: unknown[] = [statement];
  while (stack.length > 0) {
    const node = stack.pop();
    if (Array.isArray(node)) {
      for (const x of node) stack.push(x);
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    const obj = node as Record<string, unknown>;
    if (typeof obj.function_name === 'string') functions.add(obj.function_name.toLowerCase());
    if (typeof obj.table_name === 'string') {
      relations.push({
        catalog: typeof obj.catalog_name === 'string' ? obj.catalog_name : '',
        schema: typeof obj.schema_name === 'string' ? obj.schema_name : '',
        name: obj.table_name,
      });
    }
    if (typeof obj.type === 'string') refTypes.add(obj.type);
    const cteMap = obj.cte_map as { map?: Array<{ key?: unknown }> } | undefined;
    if (cteMap !== undefined && Array.isArray(cteMap.map)) {
      for (const e of cteMap.map) if (typeof e.key === 'string') ctes.add(e.key.toLowerCase());
    }
    for (const v of Object.values(obj)) if (v !== null && typeof v === 'object') stack.push(v);
  }
  return { functions, relations, ctes, refTypes };
}
