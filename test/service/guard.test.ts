import { describe, expect, it } from 'vitest';
import { explainTarget, firstKeyword, quickSelect, skipTrivia } from '../../service/src/guard.ts';
import { SqlPolicy } from '../../service/src/sql-policy.ts';

describe('the words before a statement (pure)', () => {
  it.each([
    ['  SELECT 1', 2],
    ['-- a\nSELECT 1', 5],
    ['/* a */SELECT', 7],
    ['/* a /* nested */ still */ SELECT', 27],
    ['-- a\r\n/* b */ -- c\n\tX', 20],
    ['/* never closed', 15],
  ])('skips whitespace and comments in %j up to %i', (sql, index) => {
    expect(skipTrivia(sql, 0)).toBe(index);
  });

  it.each([
    ['select 1', 'SELECT'],
    ['/* x */ with c as (select 1) select 1', 'WITH'],
    ["E'x'", undefined],
    ['(SELECT 1)', undefined],
    ['', undefined],
  ])('reads the first keyword of %j as %s', (sql, word) => {
    expect(firstKeyword(sql)).toBe(word);
  });

  it.each([
    ['EXPLAIN SELECT 1', 'SELECT 1'],
    ['explain analyze SELECT 1', 'SELECT 1'],
    ['EXPLAIN ANALYSE SELECT 1', 'SELECT 1'],
    ['-- note\nEXPLAIN /* c */ ANALYZE\n SELECT 1', 'SELECT 1'],
    ['EXPLAIN (ANALYZE, FORMAT json) SELECT 1', 'SELECT 1'],
    ["EXPLAIN ( FORMAT 'html' , ANALYZE true ) SELECT 1", 'SELECT 1'],
    ['EXPLAIN ("analyze") SELECT 1', 'SELECT 1'],
  ])('finds the statement %j explains', (sql, inner) => {
    expect(explainTarget(sql)?.trim()).toBe(inner);
  });

  it.each([
    ['not an EXPLAIN', 'SELECT 1'],
    ['an escape string in the options', "EXPLAIN ANALYZE (FORMAT E'\\') SELECT 1 --') DROP TABLE t"],
    ['a dollar-quoted option', 'EXPLAIN ANALYZE (FORMAT $$) SELECT 1 --$$) DROP TABLE t'],
    ['a word glued to a quote', "EXPLAIN (FORMAT'json') SELECT 1"],
    ['nested parentheses', 'EXPLAIN ((ANALYZE)) SELECT 1'],
    ['options never closed', 'EXPLAIN (ANALYZE SELECT 1'],
    ['a word glued to EXPLAIN', 'EXPLAINX SELECT 1'],
  ])('refuses to read an EXPLAIN with %s', (_what, sql) => {
    expect(explainTarget(sql)).toBeUndefined();
  });
});

describe('the quick check (pure)', () => {
  const policy = new SqlPolicy(
    [
      { kind: 'scalar', name: 'abs' },
      { kind: 'table', name: 'enable_logging' },
      { kind: 'view', name: 'main.duckdb_logs' },
      { kind: 'scalar', name: 'brand_new' },
    ],
    { 'scalar:abs': 'read', 'table:enable_logging': 'state', 'view:main.duckdb_logs': 'reveal' },
  );

  it('counts a function the review lacks as refused (fail closed)', () => {
    expect(policy.unreviewed).toEqual(['scalar:brand_new']);
    expect(policy.refuseFunction('BRAND_NEW')).toEqual({ name: 'BRAND_NEW', class: 'unreviewed' });
    expect(policy.refuseFunction('abs')).toBeUndefined();
    expect(policy.refuseFunction('no_such_function')).toBeUndefined();
  });

  it.each([
    'SELECT abs(-1)',
    'FROM cpu',
    'WITH c AS (SELECT 1) SELECT * FROM c',
    "SELECT 'a' || 'b' AS s -- a comment",
    'SUMMARIZE cpu',
  ])('passes %j', (sql) => {
    expect(quickSelect(sql, policy)).toBe(true);
  });

  it.each([
    ['a refused function', 'SELECT * FROM enable_logging()'],
    ['a refused name in any case', 'SELECT * FROM "ENABLE_LOGGING"()'],
    ['a refused name in a string', "SELECT 'enable_logging'"],
    ['a refused name in a comment', 'SELECT 1 /* duckdb_logs */'],
    ['a refused view', 'SELECT * FROM system.main.duckdb_logs'],
    ['an unreviewed function', 'SELECT brand_new()'],
    ['a write after a CTE', 'WITH c AS (SELECT 1) DELETE FROM cpu'],
    ['an EXPLAIN', 'EXPLAIN ANALYZE SELECT 1'],
    ['a PIVOT in a subquery', 'SELECT * FROM (PIVOT cpu ON region USING count(*))'],
    ['a PRAGMA DuckDB would expand while splitting', "SELECT 1; PRAGMA import_database('/data')"],
    ['a write first', 'DROP TABLE cpu'],
    ['a parenthesis first', '(SELECT 1)'],
    ['a NUL byte', 'SELECT 1\0'],
  ])('sends %s to the full judgement', (_what, sql) => {
    expect(quickSelect(sql, policy)).toBe(false);
  });
});
