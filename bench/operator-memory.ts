import { execFileSync } from 'node:child_process';

const MB = 1024 * 1024;

export interface OperatorMemoryBench {
  /** RSS after an ordinary full collection that followed a burst of garbage, MB. */
  pooledMb: number;
  /** RSS after the operator's last-resort collection (operator/src/memory.ts), MB. */
  afterMb: number;
}

/**
 * What the operator's last-resort collection gives back: in a child node process with the
 * image's flags, a burst of garbage, an ordinary full collection (V8 keeps the freed pages
 * pooled, resident), then `lastResortCollection()`. A figure of V8's behaviour on this machine,
 * which is why it is measured here and not asserted in a test.
 */
export function benchOperatorMemory(): OperatorMemoryBench {
  const script = `
    import { lastResortCollection } from ${JSON.stringify(new URL('../operator/src/memory.ts', import.meta.url).pathname)};
    let keep = [];
    for (let i = 0; i < 1.5e6; i++) keep.push({ a: i, b: 'x' + i, c: [i, i + 1] });
    keep = null;
    globalThis.gc({ type: 'major', execution: 'sync' });
    const pooled = process.memoryUsage().rss;
    lastResortCollection()();
    console.log(JSON.stringify({ pooled, after: process.memoryUsage().rss }));
  `;
  const out = execFileSync(process.execPath, ['--expose-gc', '--max-semi-space-size=1', '--input-type=module', '-e', script], { encoding: 'utf8' });
  const { pooled, after } = JSON.parse(out) as { pooled: number; after: number };
  return { pooledMb: pooled / MB, afterMb: after / MB };
}

export function printOperatorMemory(m: OperatorMemoryBench): void {
  console.log("Operator: V8's page pool and the last-resort collection");
  console.log(`  RSS after an ordinary full collection: ${m.pooledMb.toFixed(1)} MB`);
  console.log(`  RSS after the last-resort collection:  ${m.afterMb.toFixed(1)} MB  (gives back ${(m.pooledMb - m.afterMb).toFixed(1)} MB, ratio ${(m.afterMb / m.pooledMb).toFixed(2)})`);
}
