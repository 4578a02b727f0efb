/**
 * Writes the pod condition `arcops.dev/PoolHealthy` on the sidecar's own pod through the
 * pods/status subresource (strategic merge patch: only this condition's entry is touched).
 *
 * - Writes only when status or reason change; every `refreshMs` it reads the pod again and
 *   repairs a condition that drifted (edited by someone else, or a lost write).
 * - Never blocks the caller: `update()` records the wish and returns; one loop does the I/O.
 * - Retries failures (409, 429, 5xx, network, and also 403/404 in case RBAC or the pod appear
 *   later) with capped exponential backoff, always writing the latest verdict, not a backlog.
 * - Needs only `get` on pods and `patch` on pods/status in its namespace.
 */
import { KubeApiError, POOL_HEALTHY_CONDITION } from '@arcops/common';
import type { Clock } from '@arcops/common';
import type { Logger } from 'pino';
import type { Verdict } from './checks.ts';
import { describeCause } from './errors.ts';

/** The condition as written on the pod. */
export interface PoolCondition {
  readonly type: string;
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
  readonly lastProbeTime?: string | null;
}

/** The two API calls the writer needs: kube.ts has the real one, unit tests a small fake. */
export interface PodConditionApi {
  /** `namespace/name`, for logs and /status. */
  readonly target: string;
  read(): Promise<PoolCondition | undefined>;
  patch(condition: PoolCondition): Promise<void>;
}

/** HTTP status of a failed API call (a KubeApiError's statusCode; client-node's ApiException's code). */
export function apiStatusOf(err: unknown): number | undefined {
  if (err instanceof KubeApiError) return err.statusCode;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export function describeApiError(err: unknown): string {
  const code = apiStatusOf(err);
  if (code === undefined) return describeCause(err);
  const hint = code === 403 ? ' (the sidecar needs get on pods and patch on pods/status in its namespace)' : '';
  if (err instanceof KubeApiError) return `HTTP ${code}: ${err.message}${hint}`;
  const body = (err as { body?: unknown }).body;
  let message = typeof body === 'string' ? body : JSON.stringify(body);
  try {
    const parsed = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: unknown } | null;
    if (typeof parsed?.message === 'string') message = parsed.message;
  } catch {
    // keep the raw body
  }
  return `HTTP ${code}: ${message}${hint}`;
}

export interface ConditionWriterOptions {
  api: PodConditionApi;
  clock: Clock;
  logger: Logger;
  /** How often to re-read the pod and repair drift. */
  refreshMs: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** 0..1; jitter spreads retries of many pods. */
  random?: () => number;
  onWrite?: (ok: boolean) => void;
}

export interface ConditionSnapshot {
  readonly pod: string;
  readonly written: PoolCondition | null;
  readonly writes: number;
  readonly failures: number;
  readonly lastError: string | null;
  readonly nextRetryAt: string | null;
}

function same(a: PoolCondition | undefined, b: PoolCondition, withMessage: boolean): boolean {
  return a !== undefined && a.status === b.status && a.reason === b.reason && (!withMessage || a.message === b.message);
}

export class ConditionWriter {
  private readonly o: Required<Omit<ConditionWriterOptions, 'onWrite'>> & Pick<ConditionWriterOptions, 'onWrite'>;
  private desired: Verdict | undefined;
  private written: PoolCondition | undefined;
  /** False until the pod was read (at start, and again at each refresh). */
  private known = false;
  private verifyMessage = false;
  private running: Promise<void> | undefined;
  private timer: { handle: unknown; kind: 'retry' | 'refresh'; at: number } | undefined;
  private attempt = 0;
  private closed = false;
  private writes = 0;
  private failures = 0;
  private lastError: string | undefined;

  constructor(options: ConditionWriterOptions) {
    this.o = { initialBackoffMs: 500, maxBackoffMs: 30_000, random: Math.random, ...options };
  }

  /** Records the verdict to publish; returns at once. */
  update(verdict: Verdict): void {
    this.desired = verdict;
    this.kick();
  }

  /** Resolves when no write is in flight (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer.handle);
    this.timer = undefined;
  }

  snapshot(): ConditionSnapshot {
    return {
      pod: this.o.api.target,
      written: this.written ?? null,
      writes: this.writes,
      failures: this.failures,
      lastError: this.lastError ?? null,
      nextRetryAt: this.timer?.kind === 'retry' ? new Date(this.timer.at).toISOString() : null,
    };
  }

  private kick(): void {
    if (this.closed || this.running !== undefined || this.timer?.kind === 'retry') return;
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer.handle);
    this.timer = undefined;
    this.running = this.run().finally(() => {
      this.running = undefined;
    });
  }

  private schedule(kind: 'retry' | 'refresh', ms: number): void {
    if (this.closed) return;
    const handle = this.o.clock.setTimeout(() => {
      this.timer = undefined;
      if (kind === 'refresh') {
        this.known = false;
        this.verifyMessage = true;
      }
      this.kick();
    }, ms);
    this.timer = { handle, kind, at: this.o.clock.now() + ms };
  }

  private wanted(v: Verdict): PoolCondition {
    const status = v.healthy ? 'True' : 'False';
    const now = new Date(this.o.clock.now()).toISOString();
    return {
      type: POOL_HEALTHY_CONDITION,
      status,
      reason: v.reason,
      message: v.message,
      lastTransitionTime: this.written?.status === status ? this.written.lastTransitionTime : now,
      lastProbeTime: now,
    };
  }

  private async run(): Promise<void> {
    try {
      while (!this.closed && this.desired !== undefined) {
        if (!this.known) {
          this.written = await this.o.api.read();
          this.known = true;
        }
        const want = this.wanted(this.desired);
        if (same(this.written, want, this.verifyMessage)) break;
        await this.o.api.patch(want);
        this.written = want;
        this.writes++;
        this.o.onWrite?.(true);
        this.o.logger.info({ pod: this.o.api.target, status: want.status, reason: want.reason }, 'pod condition written');
      }
      this.verifyMessage = false;
      this.attempt = 0;
      this.lastError = undefined;
      this.schedule('refresh', this.o.refreshMs);
    } catch (err) {
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    this.failures++;
    this.attempt++;
    this.known = false; // read again before the next write: someone may have written meanwhile
    this.lastError = describeApiError(err);
    this.o.onWrite?.(false);
    const base = Math.min(this.o.maxBackoffMs, this.o.initialBackoffMs * 2 ** (this.attempt - 1));
    const delay = Math.round(base * (0.8 + 0.4 * this.o.random()));
    const code = apiStatusOf(err);
    const level = code === undefined || code === 409 || code === 429 || code >= 500 ? 'warn' : 'error';
    this.o.logger[level]({ pod: this.o.api.target, status: code, err: this.lastError, retryInMs: delay }, 'pod condition write failed; will retry');
    this.schedule('retry', delay);
  }
}
