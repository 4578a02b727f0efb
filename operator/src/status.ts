// The status of an ArcDeployment, rebuilt from what is observed on every pass: replica counts,
// the selector, and the Available / Progressing / Degraded conditions (plus those remediation
// decides). Pure: the time is an input, inputs are never mutated.
import { rfc3339 } from '@arcops/common';
import { selectorString } from './names.ts';
import { isLive, isReady, poolCondition } from './pods.ts';
import { resolveSpec } from './spec.ts';
import type { ResolvedSpec } from './spec.ts';
import type { ArcDeployment, ArcDeploymentStatus, Condition, ObservedDeployment, ObservedPod } from './types.ts';

export type SecretCheck =
  | { state: 'ok' }
  | { state: 'unchecked' }
  | { state: 'missing'; name: string }
  | { state: 'keyMissing'; name: string; key: string };

export interface ApplyProblem {
  kind: string;
  name: string;
  reason: 'ApplyFailed' | 'ResourceConflict';
  message: string;
}

export interface Observation {
  arcd: ArcDeployment;
  /** The owned Deployment as last seen (after this pass's apply, if any). */
  deployment: ObservedDeployment | undefined;
  /** Pods selected by the ArcDeployment's selector. */
  pods: readonly ObservedPod[];
  secret: SecretCheck;
  problems: readonly ApplyProblem[];
  /** Conditions decided elsewhere (remediation), merged as they are. */
  extraConditions?: readonly NewCondition[];
  /** Degraded as remediation sees it (an image fault); a blocked rollout still wins. */
  degradedOverride?: NewCondition;
}

export const CONDITION_AVAILABLE = 'Available';
export const CONDITION_PROGRESSING = 'Progressing';
export const CONDITION_DEGRADED = 'Degraded';

export type NewCondition = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function listPods(pods: readonly ObservedPod[], max = 3): string {
  const names = pods.map((p) => {
    const c = poolCondition(p);
    return `${p.metadata?.name ?? '?'} (${c?.reason ?? 'Unknown'})`;
  });
  names.sort();
  return names.length > max ? `${names.slice(0, max).join(', ')} and ${names.length - max} more` : names.join(', ');
}

function blockingProblem(o: Observation, spec: ResolvedSpec): NewCondition | undefined {
  if (o.secret.state === 'missing') {
    return {
      type: CONDITION_DEGRADED,
      status: 'True',
      reason: 'SecretNotFound',
      message:
        `Secret ${o.secret.name} (spec.apiTokenSecretRef) was not found in namespace ${o.arcd.metadata.namespace}: ` +
        `create it with the API tokens under the key "${spec.apiTokenSecretRef.key}". The Deployment is not created or updated until it exists.`,
    };
  }
  if (o.secret.state === 'keyMissing') {
    return {
      type: CONDITION_DEGRADED,
      status: 'True',
      reason: 'SecretKeyNotFound',
      message: `Secret ${o.secret.name} has no key "${o.secret.key}" (spec.apiTokenSecretRef.key): add the API tokens under it. The Deployment is not created or updated until then.`,
    };
  }
  const conflict = o.problems.find((p) => p.reason === 'ResourceConflict');
  if (conflict) return { type: CONDITION_DEGRADED, status: 'True', reason: 'ResourceConflict', message: conflict.message };
  const failed = o.problems.filter((p) => p.reason === 'ApplyFailed');
  if (failed.length > 0) {
    return {
      type: CONDITION_DEGRADED,
      status: 'True',
      reason: 'ApplyFailed',
      message: failed.map((p) => `${p.kind} ${p.name}: ${p.message}`).join('; '),
    };
  }
  return undefined;
}

function rolloutState(o: Observation, desired: number): { done: boolean; stalled?: string; message: string } {
  const d = o.deployment;
  if (d === undefined) return { done: false, message: 'the Deployment does not exist yet' };
  const st = d.status ?? {};
  const stalled = st.conditions?.find((c) => c.type === 'Progressing' && c.status === 'False' && c.reason === 'ProgressDeadlineExceeded');
  if (stalled) {
    return { done: false, stalled: stalled.message ?? 'the rollout exceeded its progress deadline', message: stalled.message ?? '' };
  }
  const generation = d.metadata?.generation ?? 0;
  // A Deployment its controller has never seen runs no pods: said as it will be said once seen,
  // so that its first status (observed, no pods yet) changes nothing here and costs no write.
  if (st.observedGeneration === undefined) return { done: false, message: `0 of ${plural(desired, 'pod')} run the current template` };
  if (st.observedGeneration < generation) return { done: false, message: 'waiting for the Deployment controller to observe the new template' };
  const updated = st.updatedReplicas ?? 0;
  const replicas = st.replicas ?? 0;
  const available = st.availableReplicas ?? 0;
  if (updated < desired) return { done: false, message: `${updated} of ${plural(desired, 'pod')} run the current template` };
  if (replicas > updated) return { done: false, message: `${plural(replicas - updated, 'old pod')} still running` };
  if (available < updated) return { done: false, message: `${available} of ${updated} updated pods available (waiting for healthy pools)` };
  return { done: true, message: `all ${plural(desired, 'pod')} run the current template` };
}

function conditionsFor(o: Observation, spec: ResolvedSpec, counts: { ready: number; healthy: ReadonlyArray<ObservedPod>; unhealthy: ReadonlyArray<ObservedPod> }): NewCondition[] {
  const desired = spec.replicas;
  const maxUnavailable = spec.remediation.maxUnavailablePods;
  const minReady = desired === 0 ? 0 : Math.max(1, desired - maxUnavailable);
  const blocked = blockingProblem(o, spec);
  const rollout = rolloutState(o, desired);

  let available: NewCondition;
  if (desired === 0) available = { type: CONDITION_AVAILABLE, status: 'True', reason: 'ScaledToZero', message: 'spec.replicas is 0' };
  else if (counts.ready >= minReady) {
    available = { type: CONDITION_AVAILABLE, status: 'True', reason: 'MinimumReplicasAvailable', message: `${counts.ready} of ${plural(desired, 'pod')} ready (at least ${minReady} needed)` };
  } else {
    available = { type: CONDITION_AVAILABLE, status: 'False', reason: 'MinimumReplicasUnavailable', message: `${counts.ready} of ${plural(desired, 'pod')} ready, at least ${minReady} needed` };
  }

  let progressing: NewCondition;
  if (spec.paused) progressing = { type: CONDITION_PROGRESSING, status: 'False', reason: 'Paused', message: 'spec.paused is true: nothing is applied or remediated' };
  else if (blocked !== undefined && (o.deployment === undefined || o.secret.state !== 'ok')) {
    progressing = { type: CONDITION_PROGRESSING, status: 'False', reason: blocked.reason, message: `the rollout is blocked: ${blocked.message}` };
  } else if (rollout.stalled !== undefined) {
    progressing = { type: CONDITION_PROGRESSING, status: 'False', reason: 'ProgressDeadlineExceeded', message: rollout.stalled };
  } else if (!rollout.done) progressing = { type: CONDITION_PROGRESSING, status: 'True', reason: 'RolloutInProgress', message: rollout.message };
  else progressing = { type: CONDITION_PROGRESSING, status: 'False', reason: 'RolloutComplete', message: rollout.message };

  let degraded: NewCondition;
  if (blocked !== undefined) degraded = blocked;
  else if (o.degradedOverride !== undefined) degraded = o.degradedOverride;
  else if (rollout.stalled !== undefined) degraded = { type: CONDITION_DEGRADED, status: 'True', reason: 'ProgressDeadlineExceeded', message: rollout.stalled };
  else if (counts.unhealthy.length > 0) {
    degraded = {
      type: CONDITION_DEGRADED,
      status: 'True',
      reason: 'PodsUnhealthy',
      message: `${counts.unhealthy.length} of ${plural(counts.healthy.length + counts.unhealthy.length, 'pod')} report an unhealthy pool: ${listPods(counts.unhealthy)}`,
    };
  } else degraded = { type: CONDITION_DEGRADED, status: 'False', reason: 'AsExpected', message: `every owned object is as declared; ${counts.healthy.length} of ${plural(desired, 'pod')} healthy` };

  return [available, progressing, degraded];
}

/** Keeps lastTransitionTime when a condition's status did not change (metav1.Condition semantics). */
export function mergeConditions(previous: readonly Condition[] | undefined, next: readonly NewCondition[], generation: number | undefined, now: Date): Condition[] {
  const time = rfc3339(now);
  const merged: Condition[] = next.map((c) => {
    const before = previous?.find((p) => p.type === c.type);
    const lastTransitionTime = before !== undefined && before.status === c.status ? before.lastTransitionTime : time;
    return { type: c.type, status: c.status, ...(generation === undefined ? {} : { observedGeneration: generation }), lastTransitionTime, reason: c.reason, message: c.message };
  });
  return merged;
}

/**
 * The status of an ArcDeployment, rebuilt from what is observed. Only the remediation history
 * (status.remediations, lastRemediationTime) is carried over, since it records what happened
 * rather than what is; conditions keep their lastTransitionTime while their status holds.
 */
export function computeStatus(o: Observation, now: Date): ArcDeploymentStatus {
  const spec = resolveSpec(o.arcd.spec);
  const live = o.pods.filter(isLive);
  const healthy = live.filter((p) => poolCondition(p)?.status === 'True');
  const unhealthy = live.filter((p) => poolCondition(p)?.status === 'False');
  const st = o.deployment?.status ?? {};
  // Ready pods counted from the pods themselves: the Deployment's readyReplicas follows them only
  // after the ReplicaSet and Deployment controllers have written their status, which in a busy
  // cluster (their client is rate-limited) can be many seconds later.
  const ready = live.filter(isReady).length;
  const generation = o.arcd.metadata.generation;
  const previous = o.arcd.status;
  const status: ArcDeploymentStatus = {
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    replicas: st.replicas ?? 0,
    readyReplicas: ready,
    availableReplicas: st.availableReplicas ?? 0,
    updatedReplicas: st.updatedReplicas ?? 0,
    healthyReplicas: healthy.length,
    selector: selectorString(o.arcd.metadata.name),
    conditions: mergeConditions(
      previous?.conditions,
      [...conditionsFor(o, spec, { ready, healthy, unhealthy }), ...(o.extraConditions ?? [])],
      generation,
      now,
    ),
  };
  if (previous?.remediations !== undefined) status.remediations = previous.remediations.map((r) => ({ ...r }));
  if (previous?.lastRemediationTime !== undefined) status.lastRemediationTime = previous.lastRemediationTime;
  if (previous?.remediationState !== undefined) status.remediationState = structuredClone(previous.remediationState);
  return status;
}
