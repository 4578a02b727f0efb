import { type DuckDBDataChunk, DuckDBMaterializedResult, type DuckDBResult } from '@duckdb/node-api';
import { resultTooLargeError } from './errors.ts';
import { chunkRows, csvLine, csvRows, rowsJsonFragment, uniqueColumnNames } from './serialize.ts';

export type Format = 'json' | 'csv';

/** What the caller learns once an answer has been read to its end. */
export interface AnswerSummary {
  rowCount: number;
  /** Rows DuckDB produced (more than rowCount when `limit` cut the answer). */
  rowsRead: number;
  /** True when `limit` cut the answer: DuckDB had more rows. */
  truncated: boolean;
  executionMs: number;
  waitMs: number;
}

export interface AnswerLimits {
  /** Rows the client asked for at most (`limit`): beyond it the answer is cut and says so. */
  limit: number | undefined;
  /** ARC_MAX_RESULT_ROWS / ARC_MAX_RESULT_BYTES: beyond them the answer fails (413). */
  maxRows: number | undefined;
  maxBytes: number | undefined;
}

/** The envelope's opening, up to the first row. */
export function answerHead(format: Format, columns: readonly string[]): string {
  return format === 'csv' ? csvLine(columns) : `{"success":true,"columns":${JSON.stringify(columns)},"data":[`;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** The envelope's end, after the last row: the figures only known then. */
export function answerTail(format: Format, s: AnswerSummary): string {
  if (format === 'csv') return '';
  return (
    `],"row_count":${s.rowCount},"truncated":${s.truncated},"execution_time_ms":${round(s.executionMs)},` +
    `"wait_time_ms":${round(s.waitMs)},"timestamp":"${new Date().toISOString()}","error":null}`
  );
}

/**
 * Reads a DuckDB result chunk by chunk and formats each chunk's rows as one piece of the
 * answer's body (JSON row fragments with their separating commas, or CSV lines). Holds at most
 * one chunk: the caller decides when to ask for the next, which is how a slow client slows
 * DuckDB down instead of filling memory.
 */
export class AnswerReader {
  readonly columns: string[];
  rowCount = 0;
  rowsRead = 0;
  /** Bytes of the body so far (counted only when ARC_MAX_RESULT_BYTES is set). */
  bytes = 0;
  truncated = false;
  private next = 0;
  private done = false;
  private readonly result: DuckDBResult;
  private readonly format: Format;
  private readonly limits: AnswerLimits;
  private readonly csvNull: string | undefined;

  constructor(result: DuckDBResult, format: Format, limits: AnswerLimits, csvNull?: string) {
    this.result = result;
    this.format = format;
    this.limits = limits;
    this.csvNull = csvNull;
    this.columns = uniqueColumnNames(result.columnNames());
  }

  /** Whether all of DuckDB's answer is already in memory. */
  get materialized(): boolean {
    return this.result instanceof DuckDBMaterializedResult;
  }

  private async chunk(): Promise<DuckDBDataChunk | undefined> {
    if (this.result instanceof DuckDBMaterializedResult) {
      return this.next < this.result.chunkCount ? this.result.getChunk(this.next++) : undefined;
    }
    const c = await this.result.fetchChunk();
    return c === null || c.rowCount === 0 ? undefined : c;
  }

  /** The next piece of the body, or undefined at the end of the answer. */
  async read(): Promise<string | undefined> {
    while (!this.done) {
      const chunk = await this.chunk();
      if (chunk === undefined) {
        this.done = true;
        return undefined;
      }
      this.rowsRead += chunk.rowCount;
      const room = (this.limits.limit ?? Number.POSITIVE_INFINITY) - this.rowCount;
      if (room <= 0) {
        this.truncated = true;
        this.done = true;
        return undefined;
      }
      const rows: unknown[][] = [];
      const taken = chunkRows(chunk, room, rows);
      if (taken < chunk.rowCount) this.truncated = true;
      if (this.limits.maxRows !== undefined && this.rowCount + taken > this.limits.maxRows) {
        throw resultTooLargeError(`more than ${this.limits.maxRows} rows (ARC_MAX_RESULT_ROWS)`);
      }
      const piece = this.format === 'csv' ? csvRows(rows, this.csvNull) : (this.rowCount === 0 ? '' : ',') + rowsJsonFragment(rows);
      this.rowCount += taken;
      // Counted only for the cap: measuring every piece's UTF-8 length costs a pass over it.
      if (this.limits.maxBytes !== undefined) this.bytes += Buffer.byteLength(piece);
      if (this.limits.maxBytes !== undefined && this.bytes > this.limits.maxBytes) {
        throw resultTooLargeError(`more than ${this.limits.maxBytes} bytes (ARC_MAX_RESULT_BYTES)`);
      }
      if (this.truncated) this.done = true;
      if (piece !== '') return piece;
    }
    return undefined;
  }
}
