import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLASSIFIED } from '../../service/src/sql-functions.ts';
import { writeParquet } from './parquet.ts';
import { type RunningService, startService } from './service.ts';

/**
 * The attack corpus of the read-only proof: statements that change the database, its settings
 * or its files, and every way DuckDB's grammar lets one statement carry another. `D` in a
 * statement is the service's data directory. Generated from two sources of truth: DuckDB's
 * statement types (every one that is not SELECT or EXPLAIN has an example, checked against
 * DuckDB's own parse by the test), and the review of DuckDB's functions (every function and
 * system view not classified `read` is called).
 */

/** One example per statement type, each prepared by the test on a scratch DuckDB to prove its type. */
export const TYPE_EXAMPLES: Readonly<Record<string, string>> = {
  INSERT: 'INSERT INTO mem SELECT * FROM mem LIMIT 1',
  UPDATE: 'UPDATE mem SET total_bytes = 0',
  DELETE: 'DELETE FROM mem',
  PREPARE: 'PREPARE p AS DELETE FROM mem',
  CREATE: 'CREATE TABLE t_new (a INT)',
  EXECUTE: 'EXECUTE p_select',
  ALTER: 'ALTER TABLE mem ADD COLUMN x INT',
  TRANSACTION: 'BEGIN TRANSACTION',
  COPY: "COPY mem TO 'D/mem.csv'",
  DROP: 'DROP TABLE mem',
  EXPORT: "EXPORT DATABASE 'D/export'",
  PRAGMA: 'PRAGMA enable_profiling',
  VACUUM: 'VACUUM',
  CALL: 'CALL enable_logging()',
  SET: 'SET threads = 1',
  LOAD: 'LOAD json',
  ATTACH: "ATTACH 'D/new.duckdb' AS x",
  DETACH: 'DETACH DATABASE IF EXISTS x',
  COPY_DATABASE: 'COPY FROM DATABASE memory TO other (SCHEMA)',
  UPDATE_EXTENSIONS: 'UPDATE EXTENSIONS',
  MERGE_INTO: 'MERGE INTO mem t USING mem s ON t.host = s.host WHEN MATCHED THEN DELETE',
};

/** Statement types that no SQL text parses to in this DuckDB, and why. */
export const TYPES_WITHOUT_TEXT: Readonly<Record<string, string>> = {
  INVALID: 'DuckDB’s marker for no statement',
  SELECT: 'the one type that runs; its state-changing calls are the function corpus below',
  EXPLAIN: 'runs only over a SELECT; every statement here is also wrapped in EXPLAIN and EXPLAIN ANALYZE',
  RELATION: 'built by DuckDB’s relational API, never parsed from text',
  LOGICAL_PLAN: 'built by DuckDB’s internals, never parsed from text',
  MULTI: 'built by DuckDB’s internals (statements that expand into several), never parsed from text',
  ANALYZE: 'ANALYZE parses as VACUUM in this DuckDB (ANALYZE is in the corpus)',
  VARIABLE_SET: 'SET VARIABLE parses as SET in this DuckDB (it is in the corpus)',
  CREATE_FUNC: 'CREATE MACRO parses as CREATE in this DuckDB (macros are in the corpus)',
  EXTENSION: 'INSTALL parses as LOAD in this DuckDB (INSTALL is in the corpus)',
};

/** Statements that write, by kind, with variants a type example does not show. */
export const WRITES: ReadonlyArray<readonly [kind: string, sql: string]> = [
  ...Object.entries(TYPE_EXAMPLES).map(([type, sql]) => [type, sql] as const),
  ['ANALYZE', 'ANALYZE mem'],
  ['SET VARIABLE', 'SET VARIABLE v = 1'],
  ['macro', 'CREATE MACRO m_new(x) AS x + 1'],
  ['INSTALL/LOAD', 'INSTALL httpfs'],
  ['COPY', 'COPY FROM DATABASE memory TO other'],
  ['DDL', 'CREATE TEMP TABLE t_tmp AS SELECT 1 AS a'],
  ['DDL', 'CREATE OR REPLACE VIEW weather AS SELECT 1 AS x'],
  ['DDL', 'CREATE VIEW v_new AS SELECT 1 AS x'],
  ['DDL', 'CREATE SCHEMA s_new'],
  ['DDL', "CREATE TYPE mood AS ENUM ('a', 'b')"],
  ['DDL', 'CREATE SEQUENCE seq_new'],
  ['DDL', 'CREATE INDEX idx_new ON mem (host)'],
  ['DDL', 'CREATE OR REPLACE TABLE mem AS SELECT 1 AS a'],
  ['DDL', 'CREATE TABLE IF NOT EXISTS cpu (a INT)'],
  ['DDL', 'DROP TABLE nosuch'],
  ['DDL', 'DROP VIEW weather'],
  ['DDL', 'DROP SCHEMA main CASCADE'],
  ['DDL', 'ALTER TABLE mem RENAME TO mem2'],
  ['DDL', 'ALTER VIEW weather RENAME TO w2'],
  ['DDL', 'ALTER TABLE nosuch ADD COLUMN x INT'],
  ['DDL', "COMMENT ON TABLE mem IS 'x'"],
  ['DML', 'INSERT INTO nosuch VALUES (1)'],
  ['DML', 'INSERT OR REPLACE INTO mem SELECT * FROM mem LIMIT 1'],
  ['DML', 'INSERT INTO mem BY NAME SELECT 1 AS total_bytes'],
  ['DML', "UPDATE cpu SET host = 'x' WHERE true"],
  ['DML', 'TRUNCATE mem'],
  ['DML', 'DELETE FROM nosuch'],
  ['COPY', "COPY (SELECT 1 AS x) TO 'D/trips.parquet' (FORMAT parquet)"],
  ['COPY', "COPY (SELECT 1 AS x) TO 'D/weather/a.parquet' (FORMAT parquet)"],
  ['COPY', "COPY mem FROM 'D/trips.parquet'"],
  ['COPY', "COPY mem TO '/tmp/arc-read-only-escape.csv'"],
  ['ATTACH', "ATTACH ':memory:' AS m2"],
  ['ATTACH', "ATTACH 'D/new.duckdb' AS x (READ_ONLY)"],
  ['ATTACH', 'DETACH memory'],
  ['ATTACH', 'USE system'],
  ['SET', 'SET GLOBAL threads = 1'],
  ['SET', 'RESET threads'],
  ['SET', 'SET enable_external_access = true'],
  ['SET', 'SET lock_configuration = false'],
  ['SET', "SET logging_level = 'debug'"],
  ['SET', "SET search_path = 'system'"],
  ['SET', 'RESET VARIABLE v'],
  ['PRAGMA', 'PRAGMA threads = 1'],
  ['PRAGMA', 'PRAGMA force_checkpoint'],
  ['PRAGMA', 'PRAGMA disable_optimizer'],
  ['PRAGMA', "PRAGMA import_database('D')"],
  ['INSTALL/LOAD', 'LOAD httpfs'],
  ['INSTALL/LOAD', 'FORCE INSTALL json'],
  ['INSTALL/LOAD', 'INSTALL h3 FROM community'],
  ['EXPORT/IMPORT', "EXPORT DATABASE '/tmp/arc-read-only-export' (FORMAT parquet)"],
  ['EXPORT/IMPORT', "IMPORT DATABASE 'D'"],
  ['CALL', 'CALL checkpoint()'],
  ['CALL', 'CALL truncate_duckdb_logs()'],
  ['CALL', 'CALL pragma_version()'],
  ['CHECKPOINT', 'CHECKPOINT'],
  ['CHECKPOINT', 'FORCE CHECKPOINT'],
  ['VACUUM', 'VACUUM ANALYZE mem'],
  ['TRANSACTION', 'BEGIN'],
  ['TRANSACTION', 'COMMIT'],
  ['TRANSACTION', 'ROLLBACK'],
  ['PREPARE', 'PREPARE p2 AS SELECT 1'],
  ['PREPARE', 'DEALLOCATE p_select'],
  ['macro', 'CREATE OR REPLACE MACRO abs(x) AS 42'],
  ['macro', 'CREATE TEMP MACRO abs(x) AS 42'],
  ['macro', 'CREATE MACRO tm() AS TABLE SELECT 1 AS a'],
  ['macro', 'DROP MACRO abs'],
  ['secret', "CREATE SECRET sec (TYPE s3, KEY_ID 'k', SECRET 'v')"],
  ['secret', 'CREATE PERSISTENT SECRET psec (TYPE s3)'],
  ['secret', 'DROP SECRET sec'],
  ['dynamic PIVOT', 'PIVOT cpu ON region USING count(*)'],
];

/** A call of every function and a read of every system view the review does not class `read`. */
export function refusedCalls(): Array<readonly [key: string, sql: string]> {
  const out: Array<readonly [string, string]> = [];
  for (const [key, cls] of Object.entries(CLASSIFIED)) {
    if (cls === 'read' || cls === 'pragma') continue;
    const [kind, name] = key.split(':') as [string, string];
    if (kind === 'table' || kind === 'table_macro') out.push([key, `SELECT * FROM ${name}()`]);
    else if (kind === 'view') {
      out.push([key, `SELECT * FROM ${name}`]);
      out.push([key, `SELECT * FROM ${name.slice(name.indexOf('.') + 1)}`]);
    } else out.push([key, `SELECT ${name}()`]);
  }
  return out;
}

const quote = (s: string): string => `'${s.replaceAll("'", "''")}'`;

/** Every way to carry a statement S inside another text, as DuckDB's grammar allows (and some it does not). */
export const WRAPPERS: ReadonlyArray<readonly [name: string, wrap: (s: string) => string]> = [
  ['as is', (s) => s],
  ['EXPLAIN', (s) => `EXPLAIN ${s}`],
  ['EXPLAIN ANALYZE', (s) => `EXPLAIN ANALYZE ${s}`],
  ['EXPLAIN ANALYSE', (s) => `EXPLAIN ANALYSE ${s}`],
  ['EXPLAIN (ANALYZE)', (s) => `EXPLAIN (ANALYZE) ${s}`],
  ['EXPLAIN (ANALYZE, FORMAT json)', (s) => `EXPLAIN (ANALYZE, FORMAT json) ${s}`],
  ['EXPLAIN (ANALYZE false)', (s) => `EXPLAIN (ANALYZE false) ${s}`],
  ['explain analyze, lower case', (s) => `explain analyze ${s.toLowerCase()}`],
  ['EXPLAIN /* c */ ANALYZE', (s) => `EXPLAIN /* c */ ANALYZE ${s}`],
  ['EXPLAIN ANALYZE, tabs and line breaks', (s) => `EXPLAIN\tANALYZE\r\n${s}`],
  ['EXPLAIN ANALYZE, a no-break space', (s) => `EXPLAIN\u00a0ANALYZE ${s}`],
  ['EXPLAIN ANALYZE with an E-string option', (s) => `EXPLAIN ANALYZE (FORMAT E'\\') SELECT 1 --') ${s}`],
  ['EXPLAIN ANALYZE with a dollar-quoted option', (s) => `EXPLAIN ANALYZE (FORMAT $$) SELECT 1 --$$) ${s}`],
  ['EXPLAIN ANALYZE of a SELECT, then S', (s) => `EXPLAIN ANALYZE SELECT 1; ${s}`],
  ['EXPLAIN ANALYZE in a subquery', (s) => `SELECT * FROM (EXPLAIN ANALYZE ${s})`],
  ['CTE before S', (s) => `WITH c AS (SELECT 1) ${s}`],
  ['S in a CTE', (s) => `WITH c AS (${s}) SELECT * FROM c`],
  ['S in a materialized CTE', (s) => `WITH c AS MATERIALIZED (${s}) SELECT * FROM c`],
  ['S in a subquery', (s) => `SELECT * FROM (${s})`],
  ['S as a scalar subquery', (s) => `SELECT (${s})`],
  ['S in EXISTS', (s) => `SELECT 1 WHERE EXISTS (${s})`],
  ['S in a LATERAL join', (s) => `SELECT * FROM (SELECT 1) t, LATERAL (${s})`],
  ['FROM-first S', (s) => `FROM (${s})`],
  ['S in parentheses', (s) => `(${s})`],
  ['query()', (s) => `SELECT * FROM query(${quote(s)})`],
  ['json_execute_serialized_sql', (s) => `SELECT * FROM json_execute_serialized_sql(json_serialize_sql(${quote(s)}))`],
  ['json_serialize_plan', (s) => `SELECT json_serialize_plan(${quote(s)})`],
  ['PIVOT over S', (s) => `PIVOT (${s}) ON 1 USING count(*)`],
  ['PIVOT in a subquery', (s) => `SELECT * FROM (PIVOT (${s}) ON 1 IN (1) USING count(*))`],
  ['SUMMARIZE S', (s) => `SUMMARIZE (${s})`],
  ['DESCRIBE S', (s) => `DESCRIBE (${s})`],
  ['a SELECT, then S', (s) => `SELECT 1; ${s}`],
  ['S, then a SELECT', (s) => `${s}; SELECT 1`],
  ['S with a semicolon', (s) => `${s};`],
  ['a semicolon, then S', (s) => `;${s}`],
  ['block comment before', (s) => `/* c */ ${s}`],
  ['nested block comment before', (s) => `/* /* nested */ */ ${s}`],
  ['line comment before', (s) => `-- c\n${s}`],
  ['line comment after', (s) => `${s} -- c`],
  ['semicolon in a comment', (s) => `SELECT 1 /* ; */; ${s}`],
  ['NUL, then S', (s) => `SELECT 1\0; ${s}`],
  ['S, then NUL', (s) => `${s}\0`],
  ['NUL first', (s) => `\0${s}`],
  ['line breaks for spaces', (s) => s.replaceAll(' ', '\n')],
  ['PREPARE of S', (s) => `PREPARE q AS ${s}`],
  ['S in a view', (s) => `CREATE TEMP VIEW v AS ${s}`],
];

/** A deterministic generator of 32-bit numbers (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MUTATIONS: ReadonlyArray<(s: string, r: () => number) => string> = [
  (s) => s.toUpperCase(),
  (s) => s.toLowerCase(),
  (s, r) => s.replace(/ /g, () => [' ', '  ', '\t', '\n', ' /**/ ', ' --x\n'][Math.floor(r() * 6)]!),
  (s, r) => {
    const i = Math.floor(r() * (s.length + 1));
    // (No comment openers: a comment that hides the write would make a harmless text.)
    return `${s.slice(0, i)}${['\0', ';', ' ', '\n', "'", '"', '(', ')'][Math.floor(r() * 8)]}${s.slice(i)}`;
  },
  (s) => `${s};;`,
  (s) => `;; ${s}`,
  (s) => `\uFEFF${s}`,
];

/** One fuzz case: a random write or refused call, wrapped one to four times, mutated or not. */
export function fuzzCase(r: () => number, statements: readonly string[]): string {
  let s = statements[Math.floor(r() * statements.length)]!;
  const depth = 1 + Math.floor(r() * 4);
  for (let i = 0; i < depth; i++) s = WRAPPERS[Math.floor(r() * WRAPPERS.length)]![1](s);
  if (r() < 0.5) s = MUTATIONS[Math.floor(r() * MUTATIONS.length)]!(s, r);
  return s;
}

/** The service the attacks are sent to: demo tables, and a data directory with a view and a file. */
export interface Target {
  svc: RunningService;
  dir: string;
  /** The statement with its `D` placeholders turned into the data directory. */
  path(sql: string): string;
  close(): Promise<void>;
}

export async function startTarget(): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'arc-read-only-'));
  mkdirSync(join(dir, 'weather'));
  await writeParquet(join(dir, 'weather', 'a.parquet'), "SELECT 'oslo' AS city, 1.5 AS temp");
  await writeParquet(join(dir, 'trips.parquet'), 'SELECT range AS id FROM range(5)');
  const svc = await startService({ ARC_DATA_DIR: dir, ARC_DEMO_DATA: 'true' });
  return {
    svc,
    dir,
    path: (sql) => sql.replaceAll("'D'", `'${dir}'`).replaceAll("'D/", `'${dir}/`),
    close: async () => {
      await svc.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
