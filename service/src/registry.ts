import { randomUUID } from 'node:crypto';

export type QueryStatus = 'running' | 'completed' | 'cancelled' | 'failed' | 'timed_out';

/** A query as GET /api/v1/queries shows it (Arc's field names). */
export interface TrackedQuery {
  id: string;
  /** The SQL text (cut to 200 characters in lists), or null for a query sent with another token. */
  sql: string | null;
  /** A fingerprint of the token the query came with (never the token). */
  token_id: string;
  remote_addr: string | null;
  priority: string;
  status: QueryStatus;
  start_time: string;
  end_time?: string;
  duration_ms?: number;
  row_count?: number;
  error?: string;
}

interface Entry {
  query: TrackedQuery;
  startedAt: number;
  cancel: () => void;
}

export type CancelOutcome = 'cancelled' | 'not-found' | 'finished' | 'not-yours';

/**
 * The queries running now and the last ones that ended, for GET/DELETE /api/v1/queries. A
 * caller sees the SQL text of the queries sent with its own token only: other clients' SQL is
 * theirs (docs/security.md), and so is cancelling them.
 */
export class QueryRegistry {
  private readonly running = new Map<string, Entry>();
  private readonly ended: TrackedQuery[] = [];
  private readonly historySize: number;
  private readonly now: () => number;

  constructor(historySize = 100, now: () => number = Date.now) {
    this.historySize = historySize;
    this.now = now;
  }

  start(sql: string, tokenId: string, remoteAddr: string | undefined, priority: string, cancel: () => void): string {
    const id = randomUUID().slice(0, 12);
    const startedAt = this.now();
    this.running.set(id, {
      query: { id, sql, token_id: tokenId, remote_addr: remoteAddr ?? null, priority, status: 'running', start_time: new Date(startedAt).toISOString() },
      startedAt,
      cancel,
    });
    return id;
  }

  end(id: string, status: Exclude<QueryStatus, 'running'>, detail: { rowCount?: number; error?: string } = {}): void {
    const entry = this.running.get(id);
    if (entry === undefined) return;
    this.running.delete(id);
    const endedAt = this.now();
    const q: TrackedQuery = { ...entry.query, status, end_time: new Date(endedAt).toISOString(), duration_ms: endedAt - entry.startedAt };
    if (detail.rowCount !== undefined) q.row_count = detail.rowCount;
    if (detail.error !== undefined) q.error = detail.error;
    this.ended.unshift(q);
    if (this.ended.length > this.historySize) this.ended.length = this.historySize;
  }

  active(viewer: string): TrackedQuery[] {
    const t = this.now();
    return [...this.running.values()].map((e) => ({ ...this.shown(e.query, viewer, 200), duration_ms: t - e.startedAt }));
  }

  history(viewer: string, limit: number): TrackedQuery[] {
    return this.ended.slice(0, limit).map((q) => this.shown(q, viewer, undefined));
  }

  get(id: string, viewer: string): TrackedQuery | undefined {
    const e = this.running.get(id);
    if (e !== undefined) return { ...this.shown(e.query, viewer, undefined), duration_ms: this.now() - e.startedAt };
    const q = this.ended.find((x) => x.id === id);
    return q === undefined ? undefined : this.shown(q, viewer, undefined);
  }

  cancel(id: string, viewer: string): CancelOutcome {
    const e = this.running.get(id);
    if (e === undefined) return this.ended.some((q) => q.id === id) ? 'finished' : 'not-found';
    if (e.query.token_id !== viewer) return 'not-yours';
    e.cancel();
    return 'cancelled';
  }

  statusOf(id: string): QueryStatus | undefined {
    return this.running.has(id) ? 'running' : this.ended.find((q) => q.id === id)?.status;
  }

  private shown(q: TrackedQuery, viewer: string, cut: number | undefined): TrackedQuery {
    if (q.token_id !== viewer) return { ...q, sql: null };
    if (cut !== undefined && q.sql !== null && q.sql.length > cut) return { ...q, sql: `${q.sql.slice(0, cut)}...` };
    return q;
  }
}
