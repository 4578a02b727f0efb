import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseState } from '../support/db-state.ts';
import { fuzzCase, prng, refusedCalls, startTarget, type Target, WRITES } from '../support/sql-attacks.ts';

// Seeded and bounded: the same seed gives the same cases in the same order, and the run stops
// after ARC_FUZZ_CASES cases or ARC_FUZZ_SECONDS seconds, whichever comes first. To explore:
//   ARC_FUZZ_SEED=$RANDOM ARC_FUZZ_CASES=100000 ARC_FUZZ_SECONDS=600 npx vitest run test/service/read-only-fuzz.test.ts
const SEED = Number(process.env['ARC_FUZZ_SEED'] ?? 20261208);
const CASES = Number(process.env['ARC_FUZZ_CASES'] ?? 3000);
const SECONDS = Number(process.env['ARC_FUZZ_SECONDS'] ?? 60);

describe('read-only under fuzzing: random wrappings of every write and refused call', () => {
  let target: Target;
  beforeAll(async () => {
    target = await startTarget();
  });
  afterAll(async () => target.close());

  it(`refuses every case and changes nothing (seed ${SEED}, up to ${CASES} cases or ${SECONDS} s)`, { timeout: (SECONDS + 60) * 1000 }, async () => {
    const { svc, dir } = target;
    const baseline = await databaseState(svc.service, dir);
    const statements = [...WRITES.map(([, sql]) => sql), ...refusedCalls().map(([, sql]) => sql)].map((s) => target.path(s));
    const random = prng(SEED);
    const deadline = Date.now() + SECONDS * 1000;
    const byStatus = new Map<number, number>();
    const slipped: string[] = [];
    let n = 0;
    while (n < CASES && Date.now() < deadline) {
      const sql = fuzzCase(random, statements);
      n++;
      const res = await svc.query({ sql });
      const body = (await res.json()) as { success: boolean; error?: string };
      byStatus.set(res.status, (byStatus.get(res.status) ?? 0) + 1);
      if ((res.status !== 400 && res.status !== 403) || body.success !== false) slipped.push(`case ${n}: ${res.status} ${JSON.stringify(sql)}`);
      if (n % 250 === 0) expect(await databaseState(svc.service, dir), `state after case ${n}`).toBe(baseline);
    }
    process.stdout.write(`read-only fuzz: seed ${SEED}, ${n} cases, status counts ${JSON.stringify(Object.fromEntries(byStatus))}\n`);
    expect(slipped).toEqual([]);
    expect(await databaseState(svc.service, dir)).toBe(baseline);
    expect(n, 'cases run').toBeGreaterThan(100);
  });
});
