// The probe loop's scheduling, driven by hand: a counting stand-in for the HTTP prober and a
// manual clock. (The real prober against the real service is in probe.test.ts and sidecar.test.ts.)
import { DEFAULT_FORBIDDEN_MODULES } from '@arcops/common';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { CanaryOutcome, PoolSample, RuntimeSample, Verdict } from '../../sidecar/src/checks.ts';
import { loadConfig } from '../../sidecar/src/config.ts';
import { compileGlobs } from '../../sidecar/src/glob.ts';
import { createMetrics } from '../../sidecar/src/metrics.ts';
import { Monitor } from '../../sidecar/src/monitor.ts';
import type { Prober } from '../../sidecar/src/probe.ts';
import { FakeClock } from '../support/fake-clock.ts';

const sample: PoolSample = {
  source: 'flat',
  poolSize: 5,
  active: 0,
  idle: 5,
  live: 5,
  queueDepth: 0,
  oldestWaitMs: 0,
  totalQueriesTimeout: 0,
  poolImplementation: 'DuckDBConnectionPool',
};

class CountingProber implements Prober {
  readonly url = 'http://127.0.0.1:8000';
  calls = { metrics: 0, runtime: 0, canary: 0 };
  runtimeFails = false;
  modules: string[] = ['/app/dist/main.js'];
  canaryAnswer: Promise<CanaryOutcome> | undefined;
  closed = false;

  async poolMetrics(): Promise<PoolSample> {
    this.calls.metrics++;
    return sample;
  }
  async runtime(): Promise<RuntimeSample | undefined> {
    this.calls.runtime++;
    if (this.runtimeFails) throw new Error('no answer within 2.0s');
    return { poolImplementation: 'DuckDBConnectionPool', loadedModules: this.modules };
  }
  canary(): Promise<CanaryOutcome> {
    this.calls.canary++;
    return this.canaryAnswer ?? Promise.resolve({ kind: 'ok', ms: 1 });
  }
  close(): void {
    this.closed = true;
  }
}

function monitor(prober: Prober, clock: FakeClock, verdicts: Verdict[] = []): Monitor {
  const config = loadConfig({});
  return new Monitor({
    config,
    globs: compileGlobs(DEFAULT_FORBIDDEN_MODULES),
    prober,
    clock,
    logger: pino({ level: 'silent' }),
    metrics: createMetrics(),
    onVerdict: (v) => verdicts.push(v),
  });
}

describe('probe loop', () => {
  it('reads the pool every tick but the (large) runtime report only every RUNTIME_CHECK_INTERVAL_SECONDS', async () => {
    const prober = new CountingProber();
    const clock = new FakeClock();
    const m = monitor(prober, clock);
    for (let i = 0; i < 13; i++) {
      await m.tick();
      await clock.advance(5000);
    }
    // ticks at 0, 5, ..., 60 s: runtime at 0, 30 and 60 s
    expect(prober.calls).toEqual({ metrics: 13, runtime: 3, canary: 13 });
  });

  it('asks for the runtime again at the next tick when it could not be read', async () => {
    const prober = new CountingProber();
    prober.runtimeFails = true;
    const clock = new FakeClock();
    const m = monitor(prober, clock);
    await m.tick();
    await clock.advance(5000);
    await m.tick();
    prober.runtimeFails = false;
    await clock.advance(5000);
    await m.tick();
    await clock.advance(5000);
    await m.tick();
    expect(prober.calls.runtime).toBe(3);
  });

  it('keeps ticking while a canary hangs, never runs two canaries at once, and uses its answer when it comes', async () => {
    const prober = new CountingProber();
    let answer!: (o: CanaryOutcome) => void;
    prober.canaryAnswer = new Promise((r) => (answer = r));
    const clock = new FakeClock();
    const verdicts: Verdict[] = [];
    const m = monitor(prober, clock, verdicts);
    // Each tick waits for the canary at most PROBE_TIMEOUT_SECONDS (2 s), then moves on.
    const tick = async (): Promise<void> => {
      const t = m.tick();
      await clock.advance(2000);
      await t;
    };
    await tick();
    for (let i = 0; i < 3; i++) {
      await clock.advance(3000);
      await tick();
    }
    expect(prober.calls).toMatchObject({ metrics: 4, canary: 1 });
    expect(m.status().checks['poolExhausted']).toMatchObject({ lastCanary: undefined });
    answer({ kind: 'wait-deadline', message: 'No available connections after 5.0s' });
    await clock.advance(3000);
    await m.tick(); // starts the next canary, which answers at once with the same outcome: both count
    expect(prober.calls.canary).toBe(2);
    expect(m.status().checks['poolExhausted']).toMatchObject({ lastCanary: 'wait-deadline', canaryFailuresInARow: 2 });
    expect(verdicts.map((v) => v.reason)).toEqual(['Healthy', 'Healthy', 'Healthy', 'Healthy', 'PoolExhausted']);
  });

  it('stops cleanly: no further ticks, requests in flight aborted', async () => {
    const prober = new CountingProber();
    const clock = new FakeClock();
    const m = monitor(prober, clock);
    m.start();
    await clock.advance(0);
    await clock.advance(5000);
    const before = prober.calls.metrics;
    expect(before).toBe(2);
    await m.stop();
    await clock.advance(60_000);
    expect(prober.calls.metrics).toBe(before);
    expect(prober.closed).toBe(true);
    expect(clock.pendingTimers).toBe(0);
  });
});
