// The memory trimmer's decisions (pure logic, with a fake clock, memory reader and collection),
// and, in a real child process with --expose-gc, that a last-resort collection gives back what
// V8 keeps pooled.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { MemoryTrimmer } from '../../operator/src/memory.ts';
import type { MemoryFigures } from '../../operator/src/memory.ts';
import { FakeClock } from '../support/fake-clock.ts';
import { silentLogger } from './fixtures.ts';

const MB = 1024 * 1024;

function harness(memory: MemoryFigures) {
  const clock = new FakeClock();
  const state = { reconciles: 0, collections: 0, memory };
  const trimmer = new MemoryTrimmer({
    collect: () => {
      state.collections++;
      state.memory = { ...state.memory, anonymous: state.memory.heapTotal + 50 * MB };
    },
    reconciles: () => state.reconciles,
    memory: () => state.memory,
    clock,
    logger: silentLogger,
  });
  return { clock, state, trimmer };
}

describe('MemoryTrimmer', () => {
  it('releases once after a busy period, when idle for 30 s with much anonymous memory outside the heap', () => {
    const h = harness({ anonymous: 213 * MB, heapTotal: 110 * MB, external: 3 * MB });
    h.state.reconciles = 3000;
    h.trimmer.tick(); // sees the work
    h.clock.set(h.clock.now() + 29_000);
    h.trimmer.tick();
    expect(h.state.collections).toBe(0); // not idle long enough
    h.clock.set(h.clock.now() + 2_000);
    h.trimmer.tick();
    expect(h.state.collections).toBe(1);
    h.clock.set(h.clock.now() + 60_000);
    h.trimmer.tick();
    expect(h.state.collections).toBe(1); // once per busy period
  });

  it('leaves a process alone that did little, or whose anonymous memory is mostly its heap', () => {
    const little = harness({ anonymous: 213 * MB, heapTotal: 110 * MB, external: 3 * MB });
    little.state.reconciles = 50;
    little.trimmer.tick();
    little.clock.set(little.clock.now() + 60_000);
    little.trimmer.tick();
    expect(little.state.collections).toBe(0);

    const compact = harness({ anonymous: 160 * MB, heapTotal: 110 * MB, external: 3 * MB });
    compact.state.reconciles = 3000;
    compact.trimmer.tick();
    compact.clock.set(compact.clock.now() + 60_000);
    compact.trimmer.tick();
    expect(compact.state.collections).toBe(0);
  });

  it('keeps an eye out while work goes on, and releases after the next busy period', () => {
    const h = harness({ anonymous: 213 * MB, heapTotal: 110 * MB, external: 3 * MB });
    for (let i = 1; i <= 10; i++) {
      h.state.reconciles += 50;
      h.clock.set(h.clock.now() + 10_000);
      h.trimmer.tick();
    }
    expect(h.state.collections).toBe(0); // never idle
    h.clock.set(h.clock.now() + 31_000);
    h.trimmer.tick();
    expect(h.state.collections).toBe(1);
    h.state.memory = { anonymous: 220 * MB, heapTotal: 110 * MB, external: 3 * MB };
    h.state.reconciles += 1000; // a resync
    h.trimmer.tick();
    h.clock.set(h.clock.now() + 31_000);
    h.trimmer.tick();
    expect(h.state.collections).toBe(2);
  });
});

describe('a last-resort collection in a real node process', () => {
  it('gives back the pages V8 keeps pooled after a burst of garbage', () => {
    const script = `
      import { lastResortCollection } from ${JSON.stringify(new URL('../../operator/src/memory.ts', import.meta.url).pathname)};
      let keep = [];
      for (let i = 0; i < 1.5e6; i++) keep.push({ a: i, b: 'x' + i, c: [i, i + 1] });
      keep = null;
      globalThis.gc({ type: 'major', execution: 'sync' });
      const pooled = process.memoryUsage().rss;
      lastResortCollection()();
      console.log(JSON.stringify({ pooled, after: process.memoryUsage().rss, heap: process.memoryUsage().heapTotal }));
    `;
    const out = execFileSync(process.execPath, ['--expose-gc', '--max-semi-space-size=1', '--input-type=module', '-e', script], { encoding: 'utf8' });
    const { pooled, after } = JSON.parse(out) as { pooled: number; after: number };
    const figures = `RSS after an ordinary full collection ${Math.round(pooled / MB)} MB, after the last-resort one ${Math.round(after / MB)} MB`;
    expect(pooled - after, figures).toBeGreaterThan(100 * MB);
  });
});
