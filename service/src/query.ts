import { type DuckDBConnection, type DuckDBDataChunk, DuckDBMaterializedResult, type DuckDBResult, StatementType } from '@duckdb/node-api';
import {
  ArcError,
  badRequestError,
  clientGoneError,
  internalError,
  isArcError,
  poolClosedError,
  queryTimeoutError,
  readOnlyError,
  sandboxError,
  sqlError,
} from './errors.ts';
import type { DuckDBConnectionPool, Lease, ReleaseAction } from './pool.ts';
import { judgeSql, type Judgement, quickSelect } from './guard.ts';
import { type Catalog, isReusablePlan, type PlanCache } from './plan-cache.ts';
import { isAllowedStatement, JudgementCache, statementTypeName } from './sandbox.ts';
import type { SqlPolicy } from './sql-policy.ts';
import { chunkRows, csvLine, csvRows, rowsJsonFragment, uniqueColumnNames } from './serialize.ts';
import type { Priority } from './wait-queue.ts';

export type Format = 'json' | 'csv';

export interface QueryRequest {
  sql: string;
  format: Format;
  limit: number | undefined;
  priority: Priority;
  /** CSV only: the text written for NULL (default: an empty cell). */
  csvNull?: string | undefined;
}

export interface QueryResult {
  columns: string[];
  /** JSON: row fragments "[..],[..]" to join with ","; CSV: lines including the header. */
  parts: string[];
  rowCount: number;
  waitMs: number;
  executionMs: number;
}

export interface QueryCounters {
  executed: number;
  failed: number;
  executionTimeouts: number;
  clientAborts: number;
  refused: number;
  largeResultRecreations: number;
  totalExecutionMs: number;
}

export interface QueryServiceOptions {
  queryTimeoutMs: number;
  largeResultRows: number;
  /** What the read-only guard lets statements call and read (SqlPolicy.load of the instance). */
  policy: SqlPolicy;
  now?: () => number;
  /**
   * Prepared plans to reuse for statements that read only the database's tables, and the
   * catalog that decides which those are. Without them every statement runs from its text.
   */
  plans?: { cache: PlanCache; catalog: Catalog };
  onQueryDone?: (outcome: 'success' | 'error' | 'timeout' | 'aborted' | 'refused', seconds: number) => void;
}

/** DuckDB error classes that mean "your SQL is wrong", not "the connection may be broken". */
const USER_ERROR = /^(Parser|Catalog|Binder|Conversion|Invalid Input|Not implemented|Out of Range|Constraint|Syntax|Type Mismatch|Dependency|Sequence|Invalid type|Invalid) Error/i;

function classify(err: unknown): { error: ArcError; action: ReleaseAction } {
  if (isArcError(err)) return { error: err, action: 'reuse' };
  const message = (err instanceof Error ? err.message : String(err)).replace(/^Failed to (extract statements|prepare[^:]*): /, '');
  if (/^Permission Error/i.test(message)) return { error: sandboxError(`Refused by the sandbox: ${message}`, err), action: 'reuse' };
  if (USER_ERROR.test(message)) return { error: sqlError(message, err), action: 'reuse' };
  if (/^Out of Memory Error/i.test(message)) {
    return { error: new ArcError('ARC_ERR_OUT_OF_MEMORY', 503, message, { cause: err, retryAfterSeconds: 5 }), action: 'check' };
  }
  return { error: internalError(`Query failed: ${message}`, err), action: 'check' };
}

/**
 * Runs one SQL statement from the network on a pooled connection: read-only (judged by
 * DuckDB's parse), with a query timeout and client-cancel that interrupt the query and give
 * the connection back only once the query has stopped.
 */
export class QueryService {
  readonly counters: QueryCounters = {
    executed: 0,
    failed: 0,
    executionTimeouts: 0,
    clientAborts: 0,
    refused: 0,
    largeResultRecreations: 0,
    totalExecutionMs: 0,
  };
  private readonly judged = new JudgementCache();
  private readonly now: () => number;
  /** Interrupt functions of the queries running now. */
  private readonly running = new Set<(why: 'shutdown') => void>();

  private readonly pool: DuckDBConnectionPool<DuckDBConnection>;
  private readonly options: QueryServiceOptions;

  constructor(pool: DuckDBConnectionPool<DuckDBConnection>, options: QueryServiceOptions) {
    this.pool = pool;
    this.options = options;
    this.now = options.now ?? (() => performance.now());
  }

  async run(req: QueryRequest, signal?: AbortSignal): Promise<QueryResult> {
    const started = this.now();
    try {
      const result = await this.runInner(req, signal);
      this.counters.executed++;
      this.counters.totalExecutionMs += result.executionMs;
      this.options.onQueryDone?.('success', (this.now() - started) / 1000);
      return result;
    } catch (err) {
      const e = isArcError(err) ? err : classify(err).error;
      let outcome: 'error' | 'timeout' | 'aborted' | 'refused' = 'error';
      if (e.code === 'ARC_ERR_QUERY_TIMEOUT') {
        this.counters.executionTimeouts++;
        outcome = 'timeout';
      } else if (e.code === 'ARC_ERR_CLIENT_GONE') {
        this.counters.clientAborts++;
        outcome = 'aborted';
      } else if (e.statusCode === 403) {
        this.counters.refused++;
        outcome = 'refused';
      } else if (e.code !== 'ARC_ERR_POOL_TIMEOUT' && e.code !== 'ARC_ERR_QUEUE_FULL' && e.code !== 'ARC_ERR_POOL_CLOSED') {
        this.counters.failed++;
      }
      this.options.onQueryDone?.(outcome, (this.now() - started) / 1000);
      throw e;
    }
  }

  private async runInner(req: QueryRequest, signal: AbortSignal | undefined): Promise<QueryResult> {
    const known = this.judged.get(req.sql);
    if (known !== undefined && !known.ok) throw known.error;
    let lease: Lease<DuckDBConnection>;
    try {
      lease = await this.pool.acquire(req.priority, signal);
    } catch (err) {
      if (signal?.aborted === true && !isArcError(err)) throw clientGoneError();
      throw err;
    }
    return this.execute(lease, req, known, signal);
  }

  private async execute(
    lease: Lease<DuckDBConnection>,
    req: QueryRequest,
    known: Judgement | undefined,
    signal: AbortSignal | undefined,
  ): Promise<QueryResult> {
    const conn = lease.connection;
    const execStart = this.now();
    let interrupted: 'timeout' | 'client' | 'shutdown' | undefined;
    const interrupt = (why: 'timeout' | 'client' | 'shutdown'): void => {
      interrupted ??= why;
      conn.interrupt();
    };
    const timer = setTimeout(() => interrupt('timeout'), this.options.queryTimeoutMs);
    const onAbort = (): void => interrupt('client');
    signal?.addEventListener('abort', onAbort, { once: true });
    let action: ReleaseAction = 'reuse';
    this.running.add(interrupt);
    try {
      if (signal?.aborted === true) throw clientGoneError();
      const result = await this.start(conn, req.sql, known, req.limit !== undefined);
      if (result instanceof DuckDBMaterializedResult && result.rowCount <= this.options.largeResultRows && interrupted === undefined) {
        // The answer is complete and in memory: free the connection for the next caller now
        // and serialise without holding it.
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.running.delete(interrupt);
        lease.release('reuse');
      }
      const out = await this.read(result, req);
      // An interrupt between two fetches of a streaming result ends it quietly (an empty
      // chunk, no error): never pass a cut-short result off as complete.
      if (interrupted !== undefined) throw new Error('interrupted');
      if (out.rowsRead > this.options.largeResultRows) {
        action = 'recreate';
        this.counters.largeResultRecreations++;
      }
      return {
        columns: out.columns,
        parts: out.parts,
        rowCount: out.rowCount,
        waitMs: lease.waitMs,
        executionMs: this.now() - execStart,
      };
    } catch (err) {
      if (interrupted === 'timeout') {
        action = 'check';
        throw queryTimeoutError(this.options.queryTimeoutMs);
      }
      if (interrupted === 'client') {
        action = 'check';
        throw clientGoneError();
      }
      if (interrupted === 'shutdown') {
        action = 'check';
        throw poolClosedError();
      }
      const c = classify(err);
      action = c.action;
      throw c.error;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      this.running.delete(interrupt);
      // An interrupt that raced with the end of the query may linger on the connection: check it.
      if (interrupted !== undefined && action === 'reuse') action = 'check';
      lease.release(action);
    }
  }

  /**
   * Starts the statement. New SQL is judged by the guard first (guard.ts): the quick check, or
   * DuckDB's serialized parse; then it is split and prepared (one statement, allowed type). SQL
   * seen before runs from a reused prepared plan when it reads only the database's tables, else
   * from its text.
   */
  private async start(conn: DuckDBConnection, sql: string, known: Judgement | undefined, streaming: boolean): Promise<DuckDBResult> {
    if (known === undefined) {
      if (quickSelect(sql, this.options.policy)) return this.startNew(conn, sql, true);
      const judgement = await judgeSql(conn, sql, this.options.policy, this.options.plans?.catalog ?? NO_CATALOG);
      if (!judgement.ok) {
        this.judged.set(sql, judgement);
        throw judgement.error;
      }
      return this.startNew(conn, sql, false, judgement);
    }
    if (known.ok) {
      const plans = this.options.plans;
      if (plans !== undefined && plans.cache.enabled && !known.explain) {
        // Judged on the second sighting when the quick check passed it, so SQL that never
        // repeats costs no extra parse.
        known.reusable ??= await this.judgeReuse(conn, sql, plans.catalog);
        if (known.reusable === true) return this.runPlan(conn, sql, plans.cache, streaming);
      }
      if (!streaming) return conn.run(sql);
    }
    return this.startNew(conn, sql, false);
  }

  /** Splits, prepares and starts a text the guard passed; remembers the judgement once the type is known. */
  private async startNew(conn: DuckDBConnection, sql: string, selectOnly: boolean, judgement?: Judgement): Promise<DuckDBResult> {
    const extracted = await conn.extractStatements(sql);
    if (extracted.count !== 1) throw badRequestError(`Send one statement per request (got ${extracted.count})`);
    const prepared = await extracted.prepare(0);
    try {
      const type = prepared.statementType;
      if (selectOnly ? type !== StatementType.SELECT : !isAllowedStatement(type)) {
        const error = readOnlyError(statementTypeName(type));
        this.judged.set(sql, { ok: false, error });
        throw error;
      }
      this.judged.set(sql, judgement ?? { ok: true, explain: type === StatementType.EXPLAIN, reusable: undefined });
      if (prepared.parameterCount > 0) throw badRequestError('Parameters ($1, ?) are not supported: inline the values');
      return await prepared.stream();
    } finally {
      prepared.destroySync();
    }
  }

  /** undefined when DuckDB could not say (an interrupt, say): judged again next time. */
  private async judgeReuse(conn: DuckDBConnection, sql: string, catalog: Catalog): Promise<boolean | undefined> {
    try {
      // json_serialize_sql takes a constant, not a parameter.
      const reader = await conn.runAndReadAll(`SELECT json_serialize_sql('${sql.replaceAll("'", "''")}')`);
      const serialized = reader.getRows()[0]?.[0];
      return typeof serialized === 'string' && isReusablePlan(serialized, catalog);
    } catch {
      return undefined;
    }
  }

  private async runPlan(conn: DuckDBConnection, sql: string, cache: PlanCache, streaming: boolean): Promise<DuckDBResult> {
    let prepared = cache.get(conn, sql);
    if (prepared === undefined) {
      prepared = await conn.prepare(sql);
      if (prepared.parameterCount > 0) {
        prepared.destroySync();
        throw badRequestError('Parameters ($1, ?) are not supported: inline the values');
      }
      cache.set(conn, sql, prepared);
    }
    try {
      return streaming ? await prepared.stream() : await prepared.run();
    } catch (err) {
      // Whatever went wrong, the next run prepares afresh.
      cache.delete(conn, sql);
      throw err;
    }
  }

  private async read(result: DuckDBResult, req: QueryRequest) {
    const out: ReadState = { columns: uniqueColumnNames(result.columnNames()), parts: [], rowCount: 0, rowsRead: 0 };
    const max = req.limit ?? Number.POSITIVE_INFINITY;
    if (req.format === 'csv') out.parts.push(csvLine(out.columns));
    if (result instanceof DuckDBMaterializedResult) {
      // Already in memory: read chunks in place (no threadpool round trip each), yielding to
      // the event loop every few milliseconds so a large answer cannot stall other requests.
      let sliceStart = performance.now();
      const count = result.chunkCount;
      for (let i = 0; i < count && out.rowCount < max; i++) {
        addChunk(out, result.getChunk(i), max, req);
        if (i + 1 < count && performance.now() - sliceStart > YIELD_AFTER_MS) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          sliceStart = performance.now();
        }
      }
      return out;
    }
    while (out.rowCount < max) {
      const chunk = await result.fetchChunk();
      if (chunk === null || chunk.rowCount === 0) break;
      addChunk(out, chunk, max, req);
    }
    return out;
  }

  /** Interrupts every running query (shutdown after the grace period). */
  interruptAll(): number {
    const n = this.running.size;
    for (const interrupt of this.running) interrupt('shutdown');
    return n;
  }

  /** The prepared plans this service reuses, if any. */
  get plans(): PlanCache | undefined {
    return this.options.plans?.cache;
  }

  get runningCount(): number {
    return this.running.size;
  }
}

const NO_CATALOG: Catalog = { tables: new Set(), views: new Set() };

/** Slice of main-thread time after which reading a materialized result yields to other work. */
const YIELD_AFTER_MS = 10;

interface ReadState {
  columns: string[];
  parts: string[];
  rowCount: number;
  rowsRead: number;
}

function addChunk(out: ReadState, chunk: DuckDBDataChunk, max: number, req: QueryRequest): void {
  if (chunk.rowCount === 0) return;
  out.rowsRead += chunk.rowCount;
  const rows: unknown[][] = [];
  out.rowCount += chunkRows(chunk, max - out.rowCount, rows);
  if (rows.length > 0) out.parts.push(req.format === 'csv' ? csvRows(rows, req.csvNull) : rowsJsonFragment(rows));
}
