// remediation-status.ts: the history a pass appends to, bounded, and the hourly window.
import { describe, expect, it } from 'vitest';
import { HISTORY_LIMIT, remediationStatus } from '../../operator/src/remediation-status.ts';
import { planRemediation } from '../../operator/src/remediation.ts';
import { NOW, ago, input, p } from './remediation-fixtures.ts';

describe('remediationStatus', () => {
  const eviction = { pod: 'a', uid: 'u', reason: 'PoolExhausted', message: 'exhausted', dueMs: 0 };
  const empty = planRemediation(input([p('a'), p('b'), p('c')]));

  it('appends results, counts successful evictions in the window, and stamps lastRemediationTime', () => {
    const out = remediationStatus({}, empty, [{ eviction, result: 'Evicted' }], NOW);
    expect(out.remediations).toMatchObject([{ action: 'Evict', pod: 'a', result: 'Evicted', time: ago(0) }]);
    expect(out.remediationState.evictionTimes).toEqual([ago(0)]);
    expect(out.lastRemediationTime).toBe(ago(0));
  });

  it('writes a repeated PDB refusal once', () => {
    const first = remediationStatus({}, empty, [{ eviction, result: 'Blocked' }], NOW);
    const second = remediationStatus(first, empty, [{ eviction, result: 'Blocked' }], new Date(NOW.getTime() + 5000));
    expect(second.remediations).toHaveLength(1);
    expect(second.remediationState.evictionTimes ?? []).toEqual([]);
  });

  it(`keeps the last ${HISTORY_LIMIT} entries`, () => {
    const long = Array.from({ length: HISTORY_LIMIT }, (_, i) => ({ time: ago(1000 - i), action: 'Evict', pod: `p${i}`, result: 'Evicted' }));
    const out = remediationStatus({ remediations: long }, empty, [{ eviction, result: 'Evicted' }], NOW);
    expect(out.remediations).toHaveLength(HISTORY_LIMIT);
    expect(out.remediations?.at(-1)?.pod).toBe('a');
    expect(out.remediations?.[0]?.pod).toBe('p1');
  });

  it('leaves lastRemediationTime alone when nothing happened', () => {
    expect(remediationStatus({ lastRemediationTime: ago(50) }, empty, [], NOW).lastRemediationTime).toBe(ago(50));
  });
});
