import type { DuckDBConnection } from '@duckdb/node-api';
import { type ArcError, badRequestError, readOnlyError, sandboxError, sqlError } from './errors.ts';
import { type Catalog, isReusableStatement } from './plan-cache.ts';
import { factsOf, type StatementFacts } from './sql-facts.ts';
import { REFUSED_BECAUSE, type Refusal, type SqlPolicy } from './sql-policy.ts';

/**
 * The read-only guard. No request may change the database, its settings or its files, nor see
 * other clients' queries, whatever statement carries the attempt. A SQL text runs only when
 * DuckDB's own parser (`json_serialize_sql`, a parse with no binding) says it is exactly one
 * SELECT, or EXPLAIN of exactly one SELECT, and every function and system view it names is
 * classified `read` (sql-functions.ts). Everything is judged before anything is bound, so a
 * write to a table that does not exist is refused like any other write.
 */
export type Judgement =
  /** reusable: undefined when the quick check passed the text and no parse tree was made. */
  | { readonly ok: true; readonly explain: boolean; reusable: boolean | undefined; /** its last answer was streamed */ big?: boolean }
  | { readonly ok: false; readonly error: ArcError };

/** First words of a text that the quick check may pass: the forms of a SELECT statement. */
const SELECT_FIRST_WORDS = new Set(['SELECT', 'FROM', 'VALUES', 'TABLE', 'WITH', 'SHOW', 'DESCRIBE', 'SUMMARIZE', 'UNPIVOT']);

/**
 * Words that send a text to the full judgement: statements a CTE may lead into (WITH … INSERT),
 * statements DuckDB expands while it splits a text (PRAGMA, IMPORT), and forms with a message of
 * their own (EXPLAIN, PIVOT).
 */
const SLOW_WORDS = new Set(['insert', 'update', 'delete', 'merge', 'create', 'pragma', 'import', 'explain', 'pivot', 'copy', 'attach']);

const ANY_WORD = /[A-Za-z_][A-Za-z0-9_$]*/g;

/**
 * The cheap half of the guard, for the common case: a text that starts like a SELECT and holds
 * no word that names a refused function or view or a statement that writes may skip DuckDB's
 * serialized parse. It is then run only if DuckDB splits it into exactly one statement whose
 * bound type is SELECT (query.ts). Every word of the text counts, in strings and comments too,
 * so a refused name can hide nowhere; a false alarm only costs the full judgement.
 */
export function quickSelect(sql: string, policy: SqlPolicy): boolean {
  if (sql.includes('\0')) return false;
  const first = firstKeyword(sql);
  if (first === undefined || !SELECT_FIRST_WORDS.has(first)) return false;
  for (const m of sql.matchAll(ANY_WORD)) {
    const w = m[0].toLowerCase();
    if (SLOW_WORDS.has(w) || policy.isRefusedName(w)) return false;
  }
  return true;
}

export interface Parse {
  error: boolean;
  error_type?: string;
  error_message?: string;
  statements?: unknown[];
}

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** DuckDB's parse of a text, serialized (`json_serialize_sql`: no binding, nothing run). */
export async function parse(conn: DuckDBConnection, sql: string): Promise<Parse> {
  const reader = await conn.runAndReadAll(`SELECT json_serialize_sql(${sqlString(sql)})`);
  const text = reader.getRows()[0]?.[0];
  if (typeof text !== 'string') throw new Error('json_serialize_sql returned no text');
  return JSON.parse(text) as Parse;
}

export async function judgeSql(conn: DuckDBConnection, sql: string, policy: SqlPolicy, catalog: Catalog): Promise<Judgement> {
  if (sql.includes('\0')) {
    return refuse(badRequestError('The SQL text holds a NUL character: DuckDB would run only the part before it, so it is refused'));
  }
  return judgeText(conn, sql, policy, catalog, false);
}

async function judgeText(conn: DuckDBConnection, sql: string, policy: SqlPolicy, catalog: Catalog, inExplain: boolean): Promise<Judgement> {
  const parsed = await parse(conn, sql);
  if (parsed.error) return judgeUnserializable(conn, sql, parsed, policy, catalog, inExplain);
  const statements = parsed.statements ?? [];
  if (statements.length === 0) return refuse(badRequestError('The SQL text holds no statement'));
  if (statements.length > 1) return refuse(badRequestError(`Send one statement per request (got ${statements.length})`));
  const facts = factsOf(statements[0]);
  const refusal = firstRefusal(facts, policy);
  if (refusal !== undefined) {
    const what = refusal.kind === 'function' ? `${refusal.name}()` : refusal.name;
    return refuse(sandboxError(`Refused by the sandbox: ${what} is not allowed: it ${REFUSED_BECAUSE[refusal.class]}`));
  }
  return { ok: true, explain: false, reusable: isReusableStatement(facts, catalog) };
}

/** A text DuckDB parses but cannot serialize: not (only) SELECT statements, or a parse error. */
async function judgeUnserializable(
  conn: DuckDBConnection,
  sql: string,
  parsed: Parse,
  policy: SqlPolicy,
  catalog: Catalog,
  inExplain: boolean,
): Promise<Judgement> {
  const message = parsed.error_message ?? 'unknown error';
  if (parsed.error_type === 'parser') return refuse(sqlError(`Parser Error: ${message}`));
  if (!/Only SELECT statements/i.test(message)) {
    // Fail closed: what DuckDB cannot show us is not run.
    return refuse(sandboxError(`Refused by the sandbox: the statement could not be checked (${message})`));
  }
  const keyword = firstKeyword(sql);
  const inner = inExplain ? undefined : explainTarget(sql);
  if (inner !== undefined) {
    const j = await judgeText(conn, inner, policy, catalog, true);
    if (j.ok) return { ok: true, explain: true, reusable: false };
    if (j.error.statusCode === 403 && j.error.code === 'ARC_ERR_READ_ONLY') {
      return refuse(readOnlyError(`EXPLAIN of ${firstKeyword(inner) ?? 'this statement'}`));
    }
    return j;
  }
  if (keyword === 'EXPLAIN') {
    return refuse(readOnlyError('this form of EXPLAIN', 'write it as EXPLAIN [ANALYZE] [(options)] SELECT ...'));
  }
  if (/\bPIVOT\b/i.test(sql) && (keyword === 'PIVOT' || keyword === 'SELECT' || keyword === 'WITH' || keyword === 'FROM')) {
    return refuse(
      badRequestError(
        'A PIVOT without an IN list makes DuckDB create a type before the query runs, which the read-only API does not do. ' +
          "Name the values to pivot on, e.g. PIVOT cpu ON region IN ('us-east', 'us-west') USING count(*)",
      ),
    );
  }
  return refuse(readOnlyError(keyword ?? 'this statement'));
}

function refuse(error: ArcError): Judgement {
  return { ok: false, error };
}

function firstRefusal(facts: StatementFacts, policy: SqlPolicy): (Refusal & { kind: 'function' | 'relation' }) | undefined {
  for (const name of facts.functions) {
    const r = policy.refuseFunction(name);
    if (r !== undefined) return { ...r, kind: 'function' };
  }
  for (const rel of facts.relations) {
    const r = policy.refuseRelation(rel.name);
    if (r !== undefined) return { ...r, kind: 'relation' };
  }
  return undefined;
}

// ---- the words before a statement ----------------------------------------------------------

const ASCII_SPACE = /[ \t\n\r\f\v]/;

/** Index after whitespace and comments from `i` (block comments nest, as in DuckDB). */
export function skipTrivia(sql: string, i: number): number {
  for (;;) {
    while (i < sql.length && ASCII_SPACE.test(sql[i]!)) i++;
    if (sql.startsWith('--', i)) {
      while (i < sql.length && sql[i] !== '\n' && sql[i] !== '\r') i++;
      continue;
    }
    if (sql.startsWith('/*', i)) {
      let depth = 0;
      do {
        if (sql.startsWith('/*', i)) {
          depth++;
          i += 2;
        } else if (sql.startsWith('*/', i)) {
          depth--;
          i += 2;
        } else if (i >= sql.length) {
          return sql.length;
        } else {
          i++;
        }
      } while (depth > 0);
      continue;
    }
    return i;
  }
}

const WORD = /[A-Za-z_][A-Za-z0-9_]*/y;

function wordAt(sql: string, i: number): string | undefined {
  WORD.lastIndex = i;
  const m = WORD.exec(sql);
  if (m === null) return undefined;
  const next = sql[i + m[0].length];
  // "E'...'", "x$", "é": not a plain word to this small reader.
  if (next !== undefined && /[$'"&\u0080-\uffff]/.test(next)) return undefined;
  return m[0];
}

/** The statement's first keyword, upper case, or undefined. */
export function firstKeyword(sql: string): string | undefined {
  return wordAt(sql, skipTrivia(sql, 0))?.toUpperCase();
}

/**
 * The statement an EXPLAIN runs or plans: the text after `EXPLAIN [ANALYZE|ANALYSE] [(options)]`.
 * The options may hold only plain words, numbers, simple quoted strings and commas, so that
 * this reader and DuckDB's cannot disagree on where the options end. Undefined when the text
 * is not such an EXPLAIN: the caller then refuses it.
 */
export function explainTarget(sql: string): string | undefined {
  let i = skipTrivia(sql, 0);
  if (wordAt(sql, i)?.toUpperCase() !== 'EXPLAIN') return undefined;
  i = skipTrivia(sql, i + 'EXPLAIN'.length);
  const w = wordAt(sql, i)?.toUpperCase();
  if (w === 'ANALYZE' || w === 'ANALYSE') i = skipTrivia(sql, i + w.length);
  if (sql[i] === '(') {
    const end = optionsEnd(sql, i + 1);
    if (end === undefined) return undefined;
    i = end;
  }
  return sql.slice(i);
}

const OPTION_TOKEN = /[A-Za-z_][A-Za-z0-9_]*|"[^"\\]*"|'[^'\\]*'|[0-9]+(?:\.[0-9]+)?|,/y;

/** Index after the `)` that closes an EXPLAIN option list starting at `i`, or undefined. */
function optionsEnd(sql: string, i: number): number | undefined {
  let previousWasToken = false;
  for (;;) {
    const j = skipTrivia(sql, i);
    if (sql[j] === ')') return j + 1;
    OPTION_TOKEN.lastIndex = j;
    const m = OPTION_TOKEN.exec(sql);
    if (m === null) return undefined;
    const isComma = m[0] === ',';
    // Two tokens with nothing between them ("E'x'", "a'b'") read differently in DuckDB.
    if (previousWasToken && j === i && !isComma) return undefined;
    previousWasToken = !isComma;
    i = j + m[0].length;
  }
}
