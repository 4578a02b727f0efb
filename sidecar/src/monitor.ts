/**
 * The probe loop: every interval it reads the service (pool metrics, runtime, a canary query
 * in the background), scans the file tree when due, and folds what it saw into the pure checks
 * (checks.ts). It owns the timers and the I/O; the judgement is not here.
 */
import type { Clock } from '@arcops/common';
import type { Logger } from 'pino';
import {
  type CanaryOutcome,
  CHECK_NAMES,
  type CheckResults,
  evaluate,
  type Fetched,
  initialState,
  type MonitorState,
  type Observation,
  type PoolSample,
  type RuntimeSample,
  type ScanOutcome,
  type Verdict,
} from './checks.ts';
import type { SidecarConfig } from './config.ts';
import { describeCause } from './errors.ts';
import type { GlobSet } from './glob.ts';
import type { SidecarMetrics } from './metrics.ts';
import type { Prober } from './probe.ts';
import type { ScanReport, Scanner } from './scan.ts';

export type MonitorConfig = Pick<SidecarConfig, 'probeIntervalMs' | 'probeTimeoutMs' | 'scanIntervalMs' | 'runtimeIntervalMs' | 'thresholds'>;

export interface MonitorOptions {
  config: MonitorConfig;
  globs: GlobSet;
  prober: Prober;
  scanner?: Scanner | undefined;
  clock: Clock;
  logger: Logger;
  metrics: SidecarMetrics;
  /** Called after every tick that has a verdict (the condition writer decides what to write). */
  onVerdict?: (verdict: Verdict) => void;
  historySize?: number;
}

export interface TransitionRecord {
  readonly at: string;
  readonly from: string;
  readonly to: string;
  readonly healthy: boolean;
  readonly message: string;
}

export interface StatusView {
  healthy: boolean;
  reason: string;
  message: string;
  since: string;
  /** False until the first verdict (the service has not answered yet and is not yet overdue). */
  settled: boolean;
  /** While unhealthy and every check is clear: when it became clear and when Healthy is due. */
  recovering: { clearSince: string; healthyAt: string } | null;
  checks: Record<string, Record<string, unknown>>;
  service: { url: string; shape: string | null; lastAnswerAt: string | null; pool: Record<string, unknown> | null };
  transitions: TransitionRecord[];
  observedAt: string | null;
  ticks: number;
}

async function fetched<T>(p: Promise<T>): Promise<Fetched<T>> {
  try {
    return { ok: true, value: await p };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : describeCause(err) };
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export class Monitor {
  private readonly o: MonitorOptions;
  private state: MonitorState;
  private checks: CheckResults | undefined;
  private readonly history: TransitionRecord[] = [];
  private canaryRun: Promise<void> | undefined;
  private canaryResults: CanaryOutcome[] = [];
  private scanResult: ScanOutcome | undefined;
  private lastScanAt: number | undefined;
  private lastRuntimeAt: number | undefined;
  private scanHits = '';
  private timer: unknown;
  private stopped = true;
  private current: Promise<void> | undefined;
  private observedAt: number | undefined;
  private ticks = 0;

  constructor(options: MonitorOptions) {
    this.o = options;
    this.state = initialState(options.clock.now());
  }

  get verdict(): Verdict | undefined {
    return this.state.verdict;
  }

  /** When the last tick finished (ms), for the liveness endpoint. */
  get lastTickAt(): number | undefined {
    return this.observedAt;
  }

  get startedAt(): number {
    return this.state.startedAt;
  }

  /** Starts ticking now and then every PROBE_INTERVAL_SECONDS (ticks never overlap). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.state = initialState(this.o.clock.now());
    this.loop();
  }

  /** Stops the loop, aborts requests in flight and waits for the running tick to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.o.prober.close();
    await this.current;
    await this.canaryRun;
  }

  private loop(): void {
    if (this.stopped) return;
    const t0 = this.o.clock.now();
    this.current = this.tick().then(
      () => undefined,
      (err: unknown) => this.o.logger.error({ err }, 'probe tick failed'),
    );
    void this.current.then(() => {
      if (this.stopped) return;
      const wait = Math.max(0, this.o.config.probeIntervalMs - (this.o.clock.now() - t0));
      this.timer = this.o.clock.setTimeout(() => this.loop(), wait);
    });
  }

  /** One probe cycle; public so tests and tools can drive it. */
  async tick(): Promise<void> {
    const { prober, config } = this.o;
    this.startCanary();
    await Promise.all([
      fetched(prober.poolMetrics()),
      this.runtimeIfDue(),
      this.scanIfDue(),
      this.waitForCanary(config.probeTimeoutMs),
    ]).then(([metrics, runtime]) => this.fold(metrics, runtime));
  }

  private fold(metrics: Fetched<PoolSample>, runtime: Fetched<RuntimeSample | undefined> | undefined): void {
    const canaries = this.canaryResults.splice(0);
    const obs: Observation = { at: this.o.clock.now(), metrics, runtime, canaries, scan: this.scanResult };
    const ev = evaluate(this.state, obs, this.o.config.thresholds, this.o.globs);
    this.state = ev.state;
    this.checks = ev.checks;
    this.observedAt = obs.at;
    this.ticks++;
    this.o.metrics.observeChecks(ev.checks);
    this.o.metrics.observeVerdict(ev.verdict);
    if (ev.transition !== undefined) this.record(ev.transition.from, ev.transition.to);
    if (ev.verdict !== undefined) this.o.onVerdict?.(ev.verdict);
  }

  private record(from: Verdict | undefined, to: Verdict): void {
    const fromReason = from?.reason ?? 'None';
    this.o.metrics.observeTransition(fromReason, to.reason);
    this.history.push({ at: iso(to.since), from: fromReason, to: to.reason, healthy: to.healthy, message: to.message });
    const max = this.o.historySize ?? 50;
    if (this.history.length > max) this.history.splice(0, this.history.length - max);
    const log = { from: fromReason, to: to.reason, message: to.message };
    if (to.healthy) this.o.logger.info(log, 'pool healthy');
    else this.o.logger.warn(log, 'pool unhealthy');
  }

  private startCanary(): void {
    if (this.canaryRun !== undefined) return;
    this.canaryRun = this.o.prober.canary().then(
      (outcome) => {
        this.canaryResults.push(outcome);
        this.canaryRun = undefined;
      },
      (err: unknown) => {
        this.canaryResults.push({ kind: 'error', message: describeCause(err) });
        this.canaryRun = undefined;
      },
    );
  }

  /** Gives a quick canary the chance to land in this tick; a slow one lands in a later one. */
  private async waitForCanary(ms: number): Promise<void> {
    const run = this.canaryRun;
    if (run === undefined) return;
    let handle: unknown;
    await Promise.race([run, new Promise<void>((resolve) => (handle = this.o.clock.setTimeout(resolve, ms)))]);
    this.o.clock.clearTimeout(handle);
  }

  /** The runtime report, when RUNTIME_CHECK_INTERVAL_SECONDS have passed (or the last try failed). */
  private async runtimeIfDue(): Promise<Fetched<RuntimeSample | undefined> | undefined> {
    const now = this.o.clock.now();
    const slack = this.o.config.probeIntervalMs / 2;
    if (this.lastRuntimeAt !== undefined && now - this.lastRuntimeAt < this.o.config.runtimeIntervalMs - slack) return undefined;
    const result = await fetched(this.o.prober.runtime());
    this.lastRuntimeAt = result.ok ? now : undefined;
    return result;
  }

  private async scanIfDue(): Promise<void> {
    const scanner = this.o.scanner;
    if (scanner === undefined || !scanner.enabled) return;
    const now = this.o.clock.now();
    const slack = this.o.config.probeIntervalMs / 2;
    if (this.lastScanAt !== undefined && now - this.lastScanAt < this.o.config.scanIntervalMs - slack) return;
    this.lastScanAt = now;
    let report: ScanReport;
    try {
      report = await scanner.scan();
    } catch (err) {
      this.o.logger.error({ err }, 'file scan failed');
      return;
    }
    this.o.metrics.observeScan(report.durationMs / 1000, report.entries, report.complete);
    const hits = report.hits.join('\n');
    if (hits !== this.scanHits) {
      if (report.hits.length > 0) this.o.logger.warn({ files: report.hits }, 'forbidden files found');
      else this.o.logger.info('no forbidden files any more');
      this.scanHits = hits;
    }
    if (!report.complete && (this.scanResult === undefined || this.scanResult.errors.join() !== report.errors.join())) {
      this.o.logger.warn({ problems: report.errors, resolved: report.resolved }, 'file scan incomplete');
    }
    this.scanResult = report;
  }

  status(): StatusView {
    const s = this.state;
    const v = s.verdict;
    const url = this.o.prober.url;
    const checks: StatusView['checks'] = {};
    for (const name of CHECK_NAMES) {
      const c = this.checks?.[name];
      checks[name] = c === undefined ? { status: 'unknown', message: 'not probed yet' } : { status: c.status, message: c.message, ...(c.since === undefined ? {} : { since: iso(c.since) }), ...c.detail };
    }
    const pool = s.lastSample === undefined ? null : { ...s.lastSample };
    return {
      healthy: v?.healthy ?? false,
      reason: v?.reason ?? 'ServiceUnreachable',
      message: v?.message ?? `starting: waiting for the first answer from ${url}`,
      since: iso(v?.since ?? s.startedAt),
      settled: v !== undefined,
      recovering:
        v !== undefined && !v.healthy && s.clearSince !== undefined
          ? { clearSince: iso(s.clearSince), healthyAt: iso(s.clearSince + this.o.config.thresholds.recoveryMs) }
          : null,
      checks,
      service: { url, shape: s.lastSample?.source ?? null, lastAnswerAt: s.lastAnswerAt === undefined ? null : iso(s.lastAnswerAt), pool },
      transitions: [...this.history],
      observedAt: this.observedAt === undefined ? null : iso(this.observedAt),
      ticks: this.ticks,
    };
  }
}
