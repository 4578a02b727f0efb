// Remediation's own fields of the ArcDeployment's status, pure: the history of what was done
// (status.remediations, bounded), lastRemediationTime, and the eviction times of the hourly
// budget. An eviction is recorded as `Evicting` before it is asked for and settled afterwards,
// by the pass that asked or, if that pass never recorded the outcome, by a later one
// (settleIntents, remediation-memory.ts). See ADR 0007.
import { rfc3339 } from '@arcops/common';
import type { PlannedEviction, RemediationPlan } from './remediation.ts';
import type { RemediationRecord, RemediationState } from './types.ts';

/** Most entries kept in status.remediations (newest last). */
export const HISTORY_LIMIT = 20;

/**
 * The result an eviction is recorded with before it is asked for, so that a process stopped
 * between the call and the record of its outcome leaves a trace; `settleIntents` settles it.
 */
export const EVICTING = 'Evicting';

/** A performed eviction's outcome (or, `Evicting`, one about to be asked for), for the history. */
export interface EvictionResult {
  eviction: PlannedEviction;
  result: typeof EVICTING | 'Evicted' | 'Blocked' | 'Gone' | 'Failed';
  message?: string;
}

/** Remediation's own status fields. */
export interface RemediationFields {
  remediations?: RemediationRecord[];
  lastRemediationTime?: string;
  remediationState?: RemediationState;
}

/**
 * The status fields remediation owns after this pass: the plan's records and the evictions'
 * results appended to the history (bounded), successful evictions added to the hourly window.
 */
export function remediationStatus(
  previous: { remediations?: readonly RemediationRecord[]; lastRemediationTime?: string },
  plan: RemediationPlan,
  results: readonly EvictionResult[],
  now: Date,
): { remediations?: RemediationRecord[]; lastRemediationTime?: string; remediationState: RemediationState } {
  const time = rfc3339(now);
  const history = [...(previous.remediations ?? []).map((r) => ({ ...r })), ...plan.records.map((r) => ({ ...r }))];
  const state: RemediationState = { ...plan.state };
  for (const r of results) {
    const last = [...history].reverse().find((h) => h.pod === r.eviction.pod);
    // A PDB refusal repeated every backoff is one entry, not a page of them.
    if (r.result === 'Blocked' && last?.result === 'Blocked') continue;
    history.push({ time, action: 'Evict', pod: r.eviction.pod, reason: r.eviction.reason, result: r.result, message: (r.message ?? r.eviction.message).slice(0, 1024) });
    // An eviction about to be asked for holds its place in the hourly budget already.
    if (r.result === 'Evicted' || r.result === EVICTING) state.evictionTimes = [...(state.evictionTimes ?? []), time];
  }
  const appended = history.length - (previous.remediations?.length ?? 0);
  const out: { remediations?: RemediationRecord[]; lastRemediationTime?: string; remediationState: RemediationState } = { remediationState: state };
  if (history.length > 0) out.remediations = history.slice(-HISTORY_LIMIT);
  const lastTime = appended > 0 ? time : previous.lastRemediationTime;
  if (lastTime !== undefined) out.lastRemediationTime = lastTime;
  return out;
}
