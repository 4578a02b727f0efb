import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, StatementType } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drift } from '../../hack/sql-functions.ts';
import { CLASSIFIED } from '../../service/src/sql-functions.ts';
import { factsOf } from '../../service/src/sql-facts.ts';
import { databaseState } from '../support/db-state.ts';
import type { RunningService } from '../support/service.ts';
import { refusedCalls, startTarget, type Target, TYPE_EXAMPLES, TYPES_WITHOUT_TEXT, WRAPPERS, WRITES } from '../support/sql-attacks.ts';

interface Envelope {
  success: boolean;
  error?: string;
  code?: string;
}

describe('the corpus is generated from DuckDB itself', () => {
  it('has an example of every statement type DuckDB parses, proven by DuckDB’s own parse', async () => {
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    const dir = mkdtempSync(join(tmpdir(), 'arc-types-'));
    try {
      await conn.run("CREATE TABLE mem AS SELECT 'h' AS host, 1::BIGINT AS total_bytes; PREPARE p_select AS SELECT 1; ATTACH ':memory:' AS other");
      const missing: string[] = [];
      for (const [type, sql] of Object.entries(TYPE_EXAMPLES)) {
        // Some statements expand into several (COPY FROM DATABASE: a transaction around copies).
        const extracted = await conn.extractStatements(sql.replaceAll("'D", `'${dir}`));
        const types: string[] = [];
        for (let i = 0; i < extracted.count; i++) {
          const prepared = await extracted.prepare(i);
          types.push(StatementType[prepared.statementType] ?? String(prepared.statementType));
          prepared.destroySync();
        }
        if (!types.includes(type)) missing.push(`${type}: \`${sql}\` parses as ${types.join(', ')}`);
      }
      expect(missing).toEqual([]);
      const all = Object.keys(StatementType).filter((k) => Number.isNaN(Number(k)));
      const covered = [...Object.keys(TYPE_EXAMPLES), ...Object.keys(TYPES_WITHOUT_TEXT)];
      expect(all.filter((t) => !covered.includes(t)), 'statement types with no example').toEqual([]);
      expect(Object.keys(TYPE_EXAMPLES).filter((t) => t in TYPES_WITHOUT_TEXT)).toEqual([]);
    } finally {
      conn.closeSync();
      db.closeSync();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('has reviewed every function and system view this DuckDB exposes (npm run sql:functions)', async () => {
    const d = await drift();
    expect({ added: d.added, removed: d.removed, unreviewed: d.unreviewed }).toEqual({ added: [], removed: [], unreviewed: [] });
  });

  it('classes a built-in macro read only when its body calls nothing but read functions', async () => {
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    try {
      const macros = (
        await conn.runAndReadAll("SELECT function_type, function_name, macro_definition FROM duckdb_functions() WHERE function_type IN ('macro', 'table_macro')")
      ).getRows();
      const bad: string[] = [];
      for (const [type, name, body] of macros) {
        if (CLASSIFIED[`${String(type)}:${String(name)}`] !== 'read') continue;
        const text = String(type) === 'macro' ? `SELECT ${String(body)}` : String(body);
        const parsed = JSON.parse(String((await conn.runAndReadAll(`SELECT json_serialize_sql('${text.replaceAll("'", "''")}')`)).getRows()[0]![0])) as {
          statements?: unknown[];
        };
        for (const f of factsOf(parsed.statements?.[0]).functions) {
          const classes = Object.entries(CLASSIFIED).filter(([k]) => k.split(':')[1] === f && !k.startsWith('pragma:'));
          if (classes.some(([, c]) => c !== 'read')) bad.push(`${String(name)} calls ${f}`);
        }
      }
      expect(macros.length).toBeGreaterThan(100);
      expect(bad).toEqual([]);
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  });
});

describe('read-only means read-only: every write, wrapped every way, is refused and changes nothing', () => {
  let target: Target;
  let dir: string;
  let svc: RunningService;
  let baseline: string;
  let requests = 0;
  const path = (sql: string): string => target.path(sql);

  beforeAll(async () => {
    target = await startTarget();
    ({ dir, svc } = target);
    baseline = await databaseState(svc.service, dir);
  });
  afterAll(async () => {
    await target.close();
    process.stdout.write(`read-only proof: ${requests} wrapped forms sent, ${WRITES.length} writes and ${refusedCalls().length} refused calls, ${WRAPPERS.length} wrappers\n`);
  });

  async function send(sql: string): Promise<{ status: number; body: Envelope }> {
    requests++;
    const res = await svc.query({ sql });
    return { status: res.status, body: (await res.json()) as Envelope };
  }

  async function everyWrapping(sql: string): Promise<string[]> {
    const slipped: string[] = [];
    for (const [name, wrap] of WRAPPERS) {
      const { status, body } = await send(wrap(sql));
      if ((status !== 400 && status !== 403) || body.success !== false) slipped.push(`${name}: ${status} ${body.error ?? ''}`);
    }
    return slipped;
  }

  it.each(WRITES.map(([kind, sql]) => [kind, sql] as const))('refuses %s `%s` as a write, wrapped every way', async (kind, sql) => {
    const statement = path(sql);
    const plain = await send(statement);
    if (kind === 'dynamic PIVOT') {
      expect(plain.status).toBe(400);
      expect(plain.body.error).toMatch(/IN list/);
    } else {
      expect(plain.status, plain.body.error).toBe(403);
      expect(plain.body.code).toBe('ARC_ERR_READ_ONLY');
    }
    expect(await everyWrapping(statement)).toEqual([]);
    expect(await databaseState(svc.service, dir)).toBe(baseline);
  });

  it.each(refusedCalls())('refuses %s (`%s`) by name, before binding, wrapped every way', async (_key, sql) => {
    const plain = await send(sql);
    expect(plain.status, plain.body.error).toBe(403);
    expect(plain.body.code).toBe('ARC_ERR_SANDBOX');
    expect(await everyWrapping(sql)).toEqual([]);
    expect(await databaseState(svc.service, dir)).toBe(baseline);
  });

  it('writes no file outside the data directory either', () => {
    expect(existsSync('/tmp/arc-read-only-escape.csv')).toBe(false);
    expect(existsSync('/tmp/arc-read-only-export')).toBe(false);
  });

  it('lets every function reviewed as read reach DuckDB (it may still find the call wrong)', async () => {
    const refused: string[] = [];
    for (const [key, cls] of Object.entries(CLASSIFIED)) {
      if (cls !== 'read') continue;
      const [kind, name] = key.split(':') as [string, string];
      if (kind === 'aggregate' || kind === 'view' || /^[^a-z_]/i.test(name)) continue;
      const sql = kind === 'table' || kind === 'table_macro' ? `SELECT * FROM ${name}() LIMIT 0` : `SELECT ${name}() LIMIT 0`;
      const { status, body } = await send(sql);
      if (status === 403 || body.code === 'ARC_ERR_SANDBOX') refused.push(`${key}: ${body.error ?? ''}`);
    }
    expect(refused).toEqual([]);
    expect(await databaseState(svc.service, dir)).toBe(baseline);
  });

  it.each([
    ['EXPLAIN', 'EXPLAIN SELECT count(*) FROM cpu'],
    ['EXPLAIN ANALYZE', 'EXPLAIN ANALYZE SELECT count(*) FROM cpu'],
    ['EXPLAIN with options', 'EXPLAIN (ANALYZE, FORMAT json) SELECT count(*) FROM cpu'],
    ['EXPLAIN after a comment', '-- why is this slow?\nEXPLAIN ANALYZE SELECT 1'],
    ['a CTE', 'WITH c AS (SELECT 1 AS a) SELECT a FROM c'],
    ['a PIVOT with an IN list', "PIVOT cpu ON region IN ('us-east', 'us-west') USING count(*)"],
    ['UNPIVOT', 'UNPIVOT (SELECT 1 AS a, 2 AS b) ON a, b'],
    ['SUMMARIZE', 'SUMMARIZE cpu'],
    ['DESCRIBE', 'DESCRIBE cpu'],
    ['SHOW TABLES', 'SHOW TABLES'],
    ['FROM-first', 'FROM cpu LIMIT 1'],
    ['VALUES', 'VALUES (1), (2)'],
    ['a view over the data directory', 'SELECT city FROM weather'],
    ['a Parquet file by path', "SELECT count(*) FROM 'D/trips.parquet'"],
    ['the catalog', 'SELECT table_name FROM duckdb_tables() ORDER BY 1'],
    ['information_schema', 'SELECT count(*) FROM information_schema.tables'],
  ])('still answers %s', async (_what, sql) => {
    const { status, body } = await send(path(sql));
    expect(status, body.error).toBe(200);
    expect(body.success).toBe(true);
  });
});
