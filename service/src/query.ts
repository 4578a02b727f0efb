import { Readable } from 'node:stream';
import { type DuckDBConnection, type DuckDBMaterializedResult, type DuckDBResult, StatementType } from '@duckdb/node-api';
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
import { judgeSql, type Judgement, parse, quickSelect } from './guard.ts';
import { type Catalog, isReusableStatement, type PlanCache } from './plan-cache.ts';
import { factsOf } from './sql-facts.ts';
import { isAllowedStatement, JudgementCache, statementTypeName } from './sandbox.ts';
import type { SqlPolicy } from './sql-policy.ts';
import { AnswerReader, type AnswerSummary, answerHead, answerTail, type Format } from './answer.ts';
import type { Priority } from './wait-queue.ts';

export type { Format } from './answer.ts';

export interface QueryRequest {
  sql: string;
  format: Format;
  limit: number | undefined;
  priority: Priority;
  /** CSV only: the text written for NULL (default: an empty cell). */
  csvNull?: string | undefined;
}

/**
 * An answer, as the HTTP layer sends it: whole, when it was complete before its first byte (a
 * small answer: one write, a Content-Length), or as a stream of pieces. A stream that fails
 * after its first byte errors: the response must then break, never end as if complete.
 */
export type Answer =
  | { readonly kind: 'whole'; readonly columns: string[]; readonly body: string; readonly summary: AnswerSummary }
  | { readonly kind: 'stream'; readonly columns: string[]; readonly body: Readable; readonly done: Promise<AnswerSummary> };

/** A whole answer read in process (tests, benchmarks, tools). */
export interface QueryResult {
  columns: string[];
  body: string;
  rowCount: number;
  truncated: boolean;
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
  /** ARC_MAX_RESULT_ROWS / ARC_MAX_RESULT_BYTES (off when undefined). */
  maxResultRows?: number | undefined;
  maxResultBytes?: number | undefined;
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
  /** @internal the parts of the service an Execution uses (made once, not per query). */
  readonly internals: ExecutionContext;
  private readonly now: () => number;
  /** Interrupt functions of the queries running now. */
  private readonly running = new Set<(why: 'shutdown') => void>();

  private readonly pool: DuckDBConnectionPool<DuckDBConnection>;
  private readonly options: QueryServiceOptions;

  constructor(pool: DuckDBConnectionPool<DuckDBConnection>, options: QueryServiceOptions) {
    this.pool = pool;
    this.options = options;
    this.now = options.now ?? (() => performance.now());
    this.internals = {
      options,
      now: this.now,
      running: this.running,
      counters: this.counters,
      start: (conn, sql, known, streaming) => this.start(conn, sql, known, streaming),
      markBig: (sql) => {
        const j = this.judged.get(sql);
        if (j?.ok === true) j.big = true;
      },
    };
  }

  /** Runs a query and reads its whole answer (in-process callers; HTTP uses `answer`). */
  async run(req: QueryRequest, signal?: AbortSignal): Promise<QueryResult> {
    const a = await this.answer(req, signal);
    let body: string;
    let summary: AnswerSummary;
    if (a.kind === 'whole') {
      body = a.body;
      summary = a.summary;
    } else {
      const parts: string[] = [];
      for await (const piece of a.body) parts.push(String(piece));
      body = parts.join('');
      summary = await a.done;
    }
    return { columns: a.columns, body, rowCount: summary.rowCount, truncated: summary.truncated, waitMs: summary.waitMs, executionMs: summary.executionMs };
  }

  /**
   * Runs one query and gives its answer: whole when it is complete within the first ~64 KiB,
   * else as a stream that reads from DuckDB only as fast as the client takes it. Counters and
   * the outcome are settled when the answer ends, however it ends.
   */
  async answer(req: QueryRequest, signal?: AbortSignal): Promise<Answer> {
    const started = this.now();
    let settled = false;
    const settle = (err: unknown, summary?: AnswerSummary): ArcError | undefined => {
      if (settled) return undefined;
      settled = true;
      if (err === undefined) {
        this.counters.executed++;
        this.counters.totalExecutionMs += summary?.executionMs ?? 0;
        this.options.onQueryDone?.('success', (this.now() - started) / 1000);
        return undefined;
      }
      const e = isArcError(err) ? err : classify(err).error;
      let outcome: 'error' | 'timeout' | 'aborted' | 'refused' = 'error';
      if (e.code === 'ARC_ERR_QUERY_TIMEOUT') {
        this.counters.executionTimeouts++;
        outcome = 'timeout';
      } else if (e.code === 'ARC_ERR_CLIENT_GONE' || e.code === 'ARC_ERR_QUERY_CANCELLED') {
        this.counters.clientAborts++;
        outcome = 'aborted';
      } else if (e.statusCode === 403) {
        this.counters.refused++;
        outcome = 'refused';
      } else if (e.code !== 'ARC_ERR_POOL_TIMEOUT' && e.code !== 'ARC_ERR_QUEUE_FULL' && e.code !== 'ARC_ERR_POOL_CLOSED') {
        this.counters.failed++;
      }
      this.options.onQueryDone?.(outcome, (this.now() - started) / 1000);
      return e;
    };
    try {
      const known = this.judged.get(req.sql);
      if (known !== undefined && !known.ok) throw known.error;
      let lease: Lease<DuckDBConnection>;
      try {
        lease = await this.pool.acquire(req.priority, signal);
      } catch (err) {
        if (signal?.aborted === true && !isArcError(err)) throw abortReason(signal);
        throw err;
      }
      return await new Execution(this, lease, req, known, signal, settle).begin();
    } catch (err) {
      throw settle(err) ?? err;
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
      const parsed = await parse(conn, sql);
      const statements = parsed.statements ?? [];
      return !parsed.error && statements.length === 1 && isReusableStatement(factsOf(statements[0]), catalog);
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

/** Body text read before the first byte: an answer that ends within it is sent whole. */
const WHOLE_ANSWER_CHARS = 64 * 1024;

/** How often an interrupt is repeated until the interrupted query has stopped. */
const REINTERRUPT_MS = 50;

/** Slice of main-thread time after which reading an answer in memory yields to other work. */
const YIELD_AFTER_MS = 10;

type Why = 'timeout' | 'client' | 'cancelled' | 'shutdown';

interface ExecutionContext {
  options: QueryServiceOptions;
  now: () => number;
  running: Set<(why: 'shutdown') => void>;
  counters: QueryCounters;
  start: (conn: DuckDBConnection, sql: string, known: Judgement | undefined, streaming: boolean) => Promise<DuckDBResult>;
  /** Remembers that a text's answer streamed, so that it runs from a streaming result next time. */
  markBig: (sql: string) => void;
}

/** Why a request's signal fired: a cancel through DELETE /api/v1/queries/ID, or the client leaving. */
function abortReason(signal: AbortSignal): ArcError {
  const reason: unknown = signal.reason;
  return isArcError(reason) && reason.code === 'ARC_ERR_QUERY_CANCELLED' ? reason : clientGoneError();
}

/**
 * One query from its lease to the end of its answer: the query timeout, the client's cancel and
 * shutdown interrupt it wherever it is (in DuckDB, or waiting for a slow client), and the
 * connection goes back to the pool once, healthy, checked or replaced.
 */
class Execution {
  private interrupted: Why | undefined;
  private action: ReleaseAction = 'reuse';
  private released = false;
  private stream: Readable | undefined;
  private reinterrupt: NodeJS.Timeout | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly execStart: number;
  private readonly onAbort = (): void => {
    if (this.signal !== undefined && abortReason(this.signal).code === 'ARC_ERR_QUERY_CANCELLED') this.interrupt('cancelled');
    else this.interrupt('client');
  };
  private readonly onShutdown = (why: 'shutdown'): void => this.interrupt(why);
  private readonly service: QueryService;
  private readonly lease: Lease<DuckDBConnection>;
  private readonly req: QueryRequest;
  private readonly known: Judgement | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly settle: (err: unknown, summary?: AnswerSummary) => ArcError | undefined;

  constructor(
    service: QueryService,
    lease: Lease<DuckDBConnection>,
    req: QueryRequest,
    known: Judgement | undefined,
    signal: AbortSignal | undefined,
    settle: (err: unknown, summary?: AnswerSummary) => ArcError | undefined,
  ) {
    this.service = service;
    this.lease = lease;
    this.req = req;
    this.known = known;
    this.signal = signal;
    this.settle = settle;
    const { options, now, running } = service.internals;
    this.execStart = now();
    this.timer = setTimeout(() => this.interrupt('timeout'), options.queryTimeoutMs);
    signal?.addEventListener('abort', this.onAbort, { once: true });
    running.add(this.onShutdown);
  }

  private interrupt(why: Why): void {
    if (this.released) return;
    this.interrupted ??= why;
    this.lease.connection.interrupt();
    // DuckDB forgets an interrupt that comes before a statement starts executing (between
    // prepare and execution, say): repeat it until the connection is given back.
    this.reinterrupt ??= setInterval(() => this.lease.connection.interrupt(), REINTERRUPT_MS);
    // A stream waiting for a slow client is not in DuckDB: break it from here.
    this.stream?.destroy(this.interruptError());
  }

  private interruptError(): ArcError | undefined {
    const { options } = this.service.internals;
    if (this.interrupted === 'timeout') return queryTimeoutError(options.queryTimeoutMs);
    if (this.interrupted === 'client') return clientGoneError();
    if (this.interrupted === 'cancelled' && this.signal !== undefined) return abortReason(this.signal);
    if (this.interrupted === 'shutdown') return poolClosedError();
    return undefined;
  }

  /** Gives the connection back once (an interrupted one is checked first). */
  private release(): void {
    if (this.released) return;
    this.released = true;
    const { running } = this.service.internals;
    clearTimeout(this.timer);
    clearInterval(this.reinterrupt);
    this.signal?.removeEventListener('abort', this.onAbort);
    running.delete(this.onShutdown);
    // An interrupt that raced with the end of the query may linger on the connection: check it.
    if (this.interrupted !== undefined && this.action === 'reuse') this.action = 'check';
    this.lease.release(this.action);
  }

  /** The error to answer with: the interrupt's when there was one, else DuckDB's, classified. */
  private fail(err: unknown): ArcError {
    const interruptError = this.interruptError();
    if (interruptError !== undefined) {
      this.action = 'check';
      return interruptError;
    }
    if (isArcError(err)) return err;
    const c = classify(err);
    this.action = c.action;
    return c.error;
  }

  private summary(reader: AnswerReader): AnswerSummary {
    const { now } = this.service.internals;
    return { rowCount: reader.rowCount, rowsRead: reader.rowsRead, truncated: reader.truncated, executionMs: now() - this.execStart, waitMs: this.lease.waitMs };
  }

  private finish(reader: AnswerReader): AnswerSummary {
    // An interrupt between two fetches ends a streaming result quietly (no error): never pass
    // a cut-short result off as complete.
    if (this.interrupted !== undefined) throw new Error('interrupted');
    const { options, counters } = this.service.internals;
    if (reader.rowsRead > options.largeResultRows) {
      this.action = 'recreate';
      counters.largeResultRecreations++;
    }
    return this.summary(reader);
  }

  async begin(): Promise<Answer> {
    const { options, start } = this.service.internals;
    let reader: AnswerReader;
    const pieces: string[] = [];
    try {
      if (this.signal?.aborted === true) throw abortReason(this.signal);
      const streaming = this.req.limit !== undefined || (this.known?.ok === true && this.known.big === true);
      const result = await start(this.lease.connection, this.req.sql, this.known, streaming);
      if (this.interrupted !== undefined) throw new Error('interrupted');
      reader = new AnswerReader(result, this.req.format, { limit: this.req.limit, maxRows: options.maxResultRows, maxBytes: options.maxResultBytes }, this.req.csvNull);
      if (reader.materialized && (result as DuckDBMaterializedResult).rowCount <= options.largeResultRows && this.interrupted === undefined) {
        // The answer is complete and in memory: free the connection for the next caller now
        // and serialise without holding it.
        this.release();
      }
      pieces.push(answerHead(this.req.format, reader.columns));
      let size = 0;
      for (;;) {
        const piece = await reader.read();
        if (piece === undefined) {
          const summary = this.finish(reader);
          this.release();
          this.settle(undefined, summary);
          pieces.push(answerTail(this.req.format, summary));
          return { kind: 'whole', columns: reader.columns, body: pieces.join(''), summary };
        }
        pieces.push(piece);
        size += piece.length;
        if (size > WHOLE_ANSWER_CHARS) break;
      }
    } catch (err) {
      const e = this.fail(err);
      this.release();
      throw e;
    }
    this.remember();
    return this.streamRest(reader, pieces.join(''));
  }

  /** A text whose answer was too big to send whole runs from a streaming result next time. */
  private remember(): void {
    this.service.internals.markBig(this.req.sql);
  }

  private streamRest(reader: AnswerReader, first: string): Answer {
    let settleDone!: { resolve: (s: AnswerSummary) => void; reject: (e: unknown) => void };
    const done = new Promise<AnswerSummary>((resolve, reject) => {
      settleDone = { resolve, reject };
    });
    // Settled however the stream ends; nobody needs to listen.
    done.catch(() => undefined);
    this.stream = Readable.from(this.pieces(reader, first, settleDone), { objectMode: true, highWaterMark: 1 });
    return { kind: 'stream', columns: reader.columns, body: this.stream, done };
  }

  /** The rest of a streamed answer, one chunk's piece at a time, pulled by the socket. */
  private async *pieces(
    reader: AnswerReader,
    first: string,
    done: { resolve: (s: AnswerSummary) => void; reject: (e: unknown) => void },
  ): AsyncGenerator<string> {
    let ended = false;
    try {
      yield first;
      let slice = performance.now();
      for (;;) {
        const piece = await reader.read();
        if (piece === undefined) break;
        yield piece;
        if (reader.materialized && performance.now() - slice > YIELD_AFTER_MS) {
          await new Promise<void>((r) => setImmediate(r));
          slice = performance.now();
        }
      }
      const summary = this.finish(reader);
      ended = true;
      this.release();
      this.settle(undefined, summary);
      done.resolve(summary);
      const tail = answerTail(this.req.format, summary);
      if (tail !== '') yield tail;
    } catch (err) {
      const e = this.fail(err);
      this.release();
      done.reject(this.settle(e) ?? e);
      throw e;
    } finally {
      if (!ended && !this.released) {
        // The stream was destroyed from outside (the client went away) while it waited.
        this.interrupted ??= 'client';
        this.lease.connection.interrupt();
        const e = this.fail(undefined);
        this.release();
        done.reject(this.settle(e) ?? e);
      }
    }
  }
}
