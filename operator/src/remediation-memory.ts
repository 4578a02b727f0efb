// What this process remembers of remediation between passes, beside what the status shows:
//   - the remediation fields it last wrote, until the cache shows them (the watch delivers every
//     version in turn, and more so after reconnecting, so the cache may show an older write);
//   - the pods it evicted, until the cache shows them going (for a few seconds at most);
//   - when it first saw each pod's condition False (for conditions without a readable
//     lastTransitionTime).
// Kept in memory only: what must survive a restart or a new leader is in status (ADR 0007).
import type { Clock } from '@arcops/common';
import { podName, poolCondition } from './pods.ts';
import { EVICTING, HISTORY_LIMIT } from './remediation-status.ts';
import type { RemediationFields } from './remediation-status.ts';
import type { ArcDeployment, ArcDeploymentStatus, ObservedPod, RemediationRecord } from './types.ts';

/** How long a pod this process evicted is taken as going, if the cache does not show it. */
export const EVICTING_TTL_MS = 30_000;

/** What this process last wrote of remediation's status, and on which version of the object. */
export interface Remembered extends RemediationFields {
  /** The resourceVersion the write was computed from. */
  basedOn: string | undefined;
  /** The ArcDeployment it was written to (one deleted and made again is another). */
  uid?: string | undefined;
}

function ms(time: string | undefined): number | undefined {
  if (time === undefined) return undefined;
  const t = Date.parse(time);
  return Number.isFinite(t) ? t : undefined;
}

/** Without one occurrence of each of `times`. */
export function withoutTimes(list: readonly string[], times: readonly string[]): string[] {
  const out = [...list];
  for (const t of times) {
    const i = out.indexOf(t);
    if (i >= 0) out.splice(i, 1);
  }
  return out;
}

/**
 * Settles the `Evicting` records that no pass of this process will settle (their process
 * stopped, or the call's outcome never came back): `Evicted` once the pod is gone or going;
 * `Failed` once the pod is still live `graceMs` after the record (the eviction was never made),
 * its time given back to the hourly budget. Until then the pod is taken as going (`going`), and
 * `recheckAfterMs` says when to look again.
 */
export function settleIntents(
  previous: RemediationFields,
  pods: readonly ObservedPod[],
  now: Date,
  graceMs: number,
): { previous: RemediationFields; going: Set<string>; recheckAfterMs?: number } {
  const going = new Set<string>();
  const history = previous.remediations ?? [];
  if (!history.some((r) => r.result === EVICTING)) return { previous, going };
  const nowMs = now.getTime();
  const givenBack: string[] = [];
  let recheckAfterMs: number | undefined;
  const remediations = history.map((r) => {
    if (r.result !== EVICTING || r.pod === undefined) return r;
    const pod = pods.find((p) => podName(p) === r.pod);
    if (pod === undefined || pod.metadata?.deletionTimestamp !== undefined) return { ...r, result: 'Evicted' };
    const left = (ms(r.time) ?? 0) + graceMs - nowMs;
    if (left > 0) {
      going.add(r.pod);
      recheckAfterMs = Math.min(recheckAfterMs ?? Infinity, left);
      return r;
    }
    givenBack.push(r.time);
    return { ...r, result: 'Failed', message: `not evicted: the pass that decided it stopped before asking; ${r.message ?? ''}`.trim().slice(0, 1024) };
  });
  const state = previous.remediationState ?? {};
  const next: RemediationFields = {
    ...previous,
    remediations,
    remediationState: givenBack.length === 0 ? state : { ...state, evictionTimes: withoutTimes(state.evictionTimes ?? [], givenBack) },
  };
  return { previous: next, going, ...(recheckAfterMs === undefined ? {} : { recheckAfterMs }) };
}

/** A record's identity: an `Evicting` record and the outcome that settles it share it. */
const recordId = (r: RemediationRecord): string => `${r.time}|${r.action}|${r.pod ?? ''}`;

/** Each time as often as the list that has it most often holds it (two evictions in one second). */
export function unionTimes(a: readonly string[], b: readonly string[]): string[] {
  const out = [...a];
  const left = [...a];
  for (const t of b) {
    const i = left.indexOf(t);
    if (i >= 0) left.splice(i, 1);
    else out.push(t);
  }
  return out.sort();
}

/**
 * The observed status plus the remediation records (and eviction times) this process wrote that
 * it does not show yet; undefined when it shows them all. Records older than a full history's
 * oldest were trimmed, not lost. Of an `Evicting` record and its outcome, either side's outcome
 * wins; a time held for an eviction that was not made is given back.
 */
export function withUnseenRecords(observed: ArcDeploymentStatus, mine: RemediationFields): ArcDeploymentStatus | undefined {
  const history = new Map((observed.remediations ?? []).map((r) => [recordId(r), r]));
  const oldest = history.size >= HISTORY_LIMIT ? (observed.remediations?.[0]?.time ?? '') : '';
  let changed = false;
  const givenBack = { observed: [] as string[], mine: [] as string[] };
  for (const r of mine.remediations ?? []) {
    const id = recordId(r);
    const seen = history.get(id);
    if (seen === undefined) {
      if (r.time < oldest) continue;
      history.set(id, r);
      changed = true;
    } else if (seen.result === EVICTING && r.result !== EVICTING) {
      history.set(id, r);
      changed = true;
      if (r.result !== 'Evicted') givenBack.observed.push(r.time);
    } else if (r.result === EVICTING && seen.result !== EVICTING && seen.result !== 'Evicted') {
      givenBack.mine.push(r.time);
    }
  }
  if (!changed) return undefined;
  const lastRemediationTime = [observed.lastRemediationTime, mine.lastRemediationTime].filter((t) => t !== undefined).sort().pop();
  const times = unionTimes(
    withoutTimes(observed.remediationState?.evictionTimes ?? [], givenBack.observed),
    withoutTimes(mine.remediationState?.evictionTimes ?? [], givenBack.mine),
  );
  return {
    ...observed,
    remediations: [...history.values()].sort((x, y) => x.time.localeCompare(y.time)),
    remediationState: { ...observed.remediationState, evictionTimes: times },
    ...(lastRemediationTime === undefined ? {} : { lastRemediationTime }),
  };
}

/** What a pass builds on (RemediationMemory.recall). */
export interface Recalled {
  previous: RemediationFields;
  evicting: ReadonlySet<string>;
  falseSince: ReadonlyMap<string, number>;
  recheckAfterMs: number | undefined;
}

/** Per ArcDeployment key, what this process remembers; `forget` drops all of it. */
export class RemediationMemory {
  private readonly clock: Clock;
  private readonly written = new Map<string, Remembered>();
  /** Pods evicted by this process, and when. */
  private readonly evicted = new Map<string, Map<string, number>>();
  /** When this process first saw each pod's condition False. */
  private readonly falseSince = new Map<string, Map<string, number>>();

  constructor(clock: Clock) {
    this.clock = clock;
  }

  forget(key: string): void {
    this.written.delete(key);
    this.evicted.delete(key);
    this.falseSince.delete(key);
  }

  /**
   * What a pass builds on: remediation's status fields as this process knows them, with the
   * intents no pass will settle settled (settleIntents); the pods taken as going; when each
   * pod's condition was first seen False; when to look again at an unsettled intent.
   */
  recall(key: string, arcd: ArcDeployment, pods: readonly ObservedPod[], now: Date): Recalled {
    const settled = settleIntents(this.previous(key, arcd), pods, now, EVICTING_TTL_MS);
    return {
      previous: settled.previous,
      evicting: new Set([...this.evicting(key, pods), ...settled.going]),
      falseSince: this.falseSinceOf(key, pods),
      recheckAfterMs: settled.recheckAfterMs,
    };
  }

  /** Remediation's fields as written to `arcd` (computed from its resourceVersion now). */
  wrote(key: string, arcd: ArcDeployment, fields: RemediationFields): void {
    this.written.set(key, { basedOn: arcd.metadata.resourceVersion, uid: arcd.metadata.uid, ...fields });
  }

  /**
   * Remediation's status to build on: as this process last wrote it while the cache still shows
   * the object it was computed from. Once the cache moved on it may show only an earlier write
   * of ours: the records of what was done are kept until the cache shows them.
   */
  previous(key: string, arcd: ArcDeployment): RemediationFields {
    const mine = this.written.get(key);
    const observed = arcd.status ?? {};
    if (mine === undefined) return observed;
    if (mine.basedOn === arcd.metadata.resourceVersion) return mine;
    const merged = mine.uid === arcd.metadata.uid ? withUnseenRecords(observed, mine) : undefined;
    if (merged === undefined) this.written.delete(key);
    return merged ?? observed;
  }

  /** Notes a pod this process has just evicted. */
  evictedNow(key: string, pod: string, atMs: number): void {
    let mine = this.evicted.get(key);
    if (mine === undefined) this.evicted.set(key, (mine = new Map<string, number>()));
    mine.set(pod, atMs);
  }

  /** Pods this process evicted that the cache still shows as live (for EVICTING_TTL_MS at most). */
  evicting(key: string, pods: readonly ObservedPod[]): Set<string> {
    const mine = this.evicted.get(key);
    if (mine === undefined) return new Set();
    const nowMs = this.clock.now();
    for (const [name, at] of mine) {
      const pod = pods.find((p) => p.metadata?.name === name);
      if (pod === undefined || pod.metadata?.deletionTimestamp !== undefined || nowMs - at > EVICTING_TTL_MS) mine.delete(name);
    }
    return new Set(mine.keys());
  }

  /**
   * When each pod whose condition is False was first seen so by this process. A sidecar writes
   * lastTransitionTime, but another writer may not; without this, such a pod would start its
   * unhealthySeconds anew on every pass and never be replaced. A new leader starts the count again.
   */
  falseSinceOf(key: string, pods: readonly ObservedPod[]): Map<string, number> {
    const before = this.falseSince.get(key);
    const now = new Map<string, number>();
    for (const pod of pods) {
      const name = pod.metadata?.name;
      if (name === undefined || poolCondition(pod)?.status !== 'False') continue;
      now.set(name, before?.get(name) ?? this.clock.now());
    }
    if (now.size === 0) this.falseSince.delete(key);
    else this.falseSince.set(key, now);
    return now;
  }
}
