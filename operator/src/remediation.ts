// Remediation, the pure half: which pods to evict now, what to report, and what state to keep in
// the ArcDeployment's status, from what is observed, the state carried in status and the time.
// No I/O and no mutation of its inputs; the controller performs the evictions and the executor
// writes the status. The rules (docs/operator.md, "Remediation"):
//   - a candidate is a live pod whose arcops.dev/PoolHealthy has been False for unhealthySeconds;
//   - at most maxUnavailable pods may be down because of remediation (pods being deleted, missing
//     pods, and replacements not yet ready count; pods down because their own pool is unhealthy
//     do not, they are down anyway);
//   - a pod is not remediated again within cooldownSeconds; at most maxPerHour per hour (the
//     eviction times live in status, so a new leader does not fire a burst);
//   - storm guard: more unhealthy pods than stormThreshold -> nothing is evicted until the storm
//     has cleared and stormCooldownSeconds passed;
//   - image fault: ForbiddenModule on a fresh pod of the current template -> never evicted for it,
//     Degraded names image and file, optional rollback to the last image that was healthy.
import { FORBIDDEN_MODULE_REASON, rfc3339 } from '@arcops/common';
import { isGoing, isReady, podName, poolCondition, serviceImage } from './pods.ts';
import { resolveSpec } from './spec.ts';
import type { ResolvedSpec } from './spec.ts';
import { CONDITION_DEGRADED } from './status.ts';
import type { NewCondition } from './status.ts';
import { ANNOTATION_CONFIG_HASH } from './types.ts';
import type { ArcDeployment, ObservedPod, PodCondition, RemediationRecord, RemediationState } from './types.ts';

export const CONDITION_REMEDIATION_PAUSED = 'RemediationPaused';

/** The storm guard holds this ArcDeployment's remediation back (not its cooldown after a storm). */
export function isStorm(plan: RemediationPlan): boolean {
  return plan.conditions.some((c) => c.type === CONDITION_REMEDIATION_PAUSED && c.status === 'True' && c.reason === 'Storm');
}
const HOUR_MS = 3_600_000;

export interface RemediationInput {
  arcd: ArcDeployment;
  pods: readonly ObservedPod[];
  /** arcops.dev/config-hash of the pod template built from spec.image (not a rolled-back one). */
  templateHash: string | undefined;
  /** State carried in status (or newer, as this process last wrote it). */
  state: RemediationState;
  history: readonly RemediationRecord[];
  /** Pods this process evicted that the cache does not show as going yet. */
  evicting?: ReadonlySet<string>;
  /**
   * When this process first saw each pod's condition False, by pod name: the start of its
   * unhealthy time when the condition carries no (readable) lastTransitionTime.
   */
  falseSince?: ReadonlyMap<string, number>;
  now: Date;
}

export interface PlannedEviction {
  pod: string;
  uid?: string;
  reason: string;
  message: string;
  /** When the pod became a candidate (condition False + unhealthySeconds), ms since the epoch. */
  dueMs: number;
}

export interface PlannedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  /** Also recorded on this pod. */
  pod?: string;
}

export interface RemediationPlan {
  /** Evictions to perform now (mode Auto only). */
  evictions: PlannedEviction[];
  /** What Auto would evict (mode DryRun): reported, never performed. */
  wouldEvict: PlannedEviction[];
  conditions: NewCondition[];
  /** Replaces the Degraded condition (image fault), unless something blocks the rollout. */
  degraded?: NewCondition;
  events: PlannedEvent[];
  /** Records to append to status.remediations now (dry runs, image faults, rollbacks). */
  records: RemediationRecord[];
  /** The next state (without the results of this plan's evictions). */
  state: RemediationState;
  /** Apply the Deployment with this service image instead of spec.image (rollback). */
  rollbackImage?: string;
  /** Look again after this long: a pod becomes a candidate, a cooldown or the budget ends. */
  requeueAfterMs?: number;
}

interface Unhealthy {
  pod: ObservedPod;
  name: string;
  condition: PodCondition;
  sinceMs: number;
}

function ms(time: string | undefined): number | undefined {
  if (time === undefined) return undefined;
  const t = Date.parse(time);
  return Number.isFinite(t) ? t : undefined;
}

/**
 * The first forbidden path named in the sidecar's message, else the whole message. A path found
 * through the shared process namespace comes as `pid N:/path` (sidecar/src/scan.ts): the path.
 */
export function forbiddenFile(message: string | undefined): string {
  const text = message ?? '';
  const tree = /in the service's tree: (?:pid \d+:)?([^,;\s]+)/.exec(text);
  if (tree?.[1] !== undefined) return tree[1];
  const loaded = /has loaded ([^,;\s]+)/.exec(text);
  if (loaded?.[1] !== undefined) return loaded[1];
  return text === '' ? 'a forbidden module' : text;
}

/** Window after a pod starts within which a ForbiddenModule verdict means the image carries it. */
export function freshWindowMs(spec: ResolvedSpec): number {
  return Math.max(60, 3 * spec.probe.scanIntervalSeconds + spec.probe.intervalSeconds + spec.remediation.unhealthySeconds) * 1000;
}

function isFreshImageFault(u: Unhealthy, templateHash: string | undefined, spec: ResolvedSpec): boolean {
  if (u.condition.reason !== FORBIDDEN_MODULE_REASON || templateHash === undefined) return false;
  if (u.pod.metadata?.annotations?.[ANNOTATION_CONFIG_HASH] !== templateHash) return false;
  const started = ms(u.pod.status?.startTime) ?? ms(u.pod.metadata?.creationTimestamp);
  return started !== undefined && u.sinceMs - started <= freshWindowMs(spec);
}

function lastRecordFor(history: readonly RemediationRecord[], pod: string): RemediationRecord | undefined {
  for (let i = history.length - 1; i >= 0; i--) {
    const r = history[i];
    if (r?.pod === pod && (r.result === 'Evicted' || r.result === 'DryRun')) return r;
  }
  return undefined;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function minDelay(a: number | undefined, b: number): number {
  return a === undefined ? b : Math.min(a, b);
}

function pausedCondition(status: 'True' | 'False', reason: string, message: string): NewCondition {
  return { type: CONDITION_REMEDIATION_PAUSED, status, reason, message };
}

/** The plan when nothing may be decided (paused, mode Off): only the condition, state kept. */
function idlePlan(state: RemediationState, reason: string, message: string): RemediationPlan {
  return { evictions: [], wouldEvict: [], conditions: [pausedCondition('True', reason, message)], events: [], records: [], state };
}

interface ImageFaultOutcome {
  state: RemediationState;
  degraded?: NewCondition;
  events: PlannedEvent[];
  records: RemediationRecord[];
  rollbackImage?: string;
  faulty: Set<string>;
}

function judgeImage(input: RemediationInput, spec: ResolvedSpec, unhealthy: readonly Unhealthy[], healthyCount: number): ImageFaultOutcome {
  const now = rfc3339(input.now);
  const state: RemediationState = { ...input.state };
  const events: PlannedEvent[] = [];
  const records: RemediationRecord[] = [];
  // A new spec.image is a new chance: the fault belonged to the image it names.
  if (state.imageFault !== undefined && state.imageFault.image !== spec.image) {
    delete state.imageFault;
    delete state.rolledBackTo;
  }
  const fresh = unhealthy.filter((u) => isFreshImageFault(u, input.templateHash, spec));
  const first = fresh[0];
  if (state.imageFault === undefined && first !== undefined) {
    const file = forbiddenFile(first.condition.message);
    const image = serviceImage(first.pod) ?? spec.image;
    state.imageFault = { image, file, pod: first.name, since: now };
    events.push({
      type: 'Warning',
      reason: 'ImageFault',
      message: `image ${image} carries the forbidden file ${file} (fresh pod ${first.name}): its pods are not evicted for it, replacing them cannot help`,
      pod: first.name,
    });
    records.push({ time: now, action: 'Skip', pod: first.name, reason: FORBIDDEN_MODULE_REASON, result: 'ImageFault', message: `image ${image} carries ${file}` });
  }
  const faulty = new Set(unhealthy.filter((u) => u.condition.reason === FORBIDDEN_MODULE_REASON && state.imageFault !== undefined).map((u) => u.name));

  // Remember the last image that ran healthy everywhere, for a rollback: seen on the pods
  // themselves (the Deployment may already carry a new template they do not run yet).
  const images = new Set(input.pods.filter((p) => !isGoing(p, input.evicting ?? new Set())).map(serviceImage));
  const [only] = images;
  if (state.imageFault === undefined && images.size === 1 && only !== undefined && spec.replicas > 0 && healthyCount === spec.replicas && unhealthy.length === 0) {
    state.lastHealthyImage = only;
  }

  let rollbackImage: string | undefined;
  let degraded: NewCondition | undefined;
  const fault = state.imageFault;
  if (fault !== undefined) {
    const target = state.lastHealthyImage;
    const canRoll = spec.remediation.rollbackOnImageFault && target !== undefined && target !== fault.image;
    if (canRoll) {
      rollbackImage = target;
      if (state.rolledBackTo !== target) {
        state.rolledBackTo = target;
        events.push({ type: 'Warning', reason: 'RolledBack', message: `rolled the Deployment back from image ${fault.image} (it carries ${fault.file}) to ${target}, the last image that ran healthy` });
        records.push({ time: now, action: 'Rollback', reason: FORBIDDEN_MODULE_REASON, result: 'RolledBack', message: `from ${fault.image} to ${target}` });
      }
    }
    const then = canRoll
      ? `rolled back to ${target}; set spec.image to a fixed image to roll forward`
      : spec.remediation.rollbackOnImageFault
        ? 'no earlier image ran healthy, so there is nothing to roll back to: fix the image'
        : 'fix the image (or set spec.remediation.rollbackOnImageFault to roll back to the last healthy image)';
    degraded = { type: CONDITION_DEGRADED, status: 'True', reason: 'ImageFault', message: `image ${fault.image} carries the forbidden file ${fault.file} (reported by fresh pod ${fault.pod}); its pods are not evicted for it; ${then}` };
  }
  return { state, events, records, faulty, ...(degraded === undefined ? {} : { degraded }), ...(rollbackImage === undefined ? {} : { rollbackImage }) };
}

interface StormOutcome {
  state: RemediationState;
  /** Set while remediation must hold (storm or its cooldown). */
  hold?: NewCondition;
  events: PlannedEvent[];
  requeueAfterMs?: number;
}

function judgeStorm(input: RemediationInput, spec: ResolvedSpec, counted: readonly Unhealthy[], liveCount: number): StormOutcome {
  const nowMs = input.now.getTime();
  const now = rfc3339(input.now);
  const state: RemediationState = { ...input.state };
  const limit = spec.remediation.stormThresholdPods;
  const events: PlannedEvent[] = [];
  if (counted.length > limit) {
    const names = counted.map((u) => `${u.name} (${u.condition.reason ?? 'Unknown'})`).sort();
    const message =
      `${counted.length} of ${plural(liveCount, 'pod')} report an unhealthy pool, more than stormThreshold ${String(spec.remediation.stormThreshold)} (${limit}) tolerates: ` +
      `the cause is probably not in the pods, so nothing is evicted (${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''})`;
    if (state.stormSince === undefined || state.stormClearedTime !== undefined) {
      events.push({ type: 'Warning', reason: 'RemediationStorm', message: `${counted.length} of ${plural(liveCount, 'pod')} unhealthy: remediation paused` });
      if (state.stormSince === undefined) state.stormSince = now;
    }
    delete state.stormClearedTime;
    return { state, hold: pausedCondition('True', 'Storm', message), events };
  }
  if (state.stormSince === undefined) return { state, events };
  if (state.stormClearedTime === undefined) {
    state.stormClearedTime = now;
    events.push({ type: 'Normal', reason: 'StormCleared', message: `the storm cleared (${counted.length} unhealthy now); remediation resumes after ${spec.remediation.stormCooldownSeconds} s` });
  }
  const resumeMs = (ms(state.stormClearedTime) ?? nowMs) + spec.remediation.stormCooldownSeconds * 1000;
  if (nowMs < resumeMs) {
    return {
      state,
      events,
      hold: pausedCondition('True', 'StormCooldown', `the storm (since ${state.stormSince}) cleared at ${state.stormClearedTime}; remediation resumes at ${rfc3339(new Date(resumeMs))}`),
      requeueAfterMs: resumeMs - nowMs,
    };
  }
  delete state.stormSince;
  delete state.stormClearedTime;
  events.push({ type: 'Normal', reason: 'RemediationResumed', message: 'the storm cooldown has passed: remediation resumes' });
  return { state, events };
}

/** Pods down because of disruption (not because of their own pool): being deleted, missing, starting. */
function disrupted(pods: readonly ObservedPod[], replicas: number, evicting: ReadonlySet<string>): number {
  const going = pods.filter((p) => isGoing(p, evicting)).length;
  const live = pods.filter((p) => !isGoing(p, evicting));
  const starting = live.filter((p) => !isReady(p) && poolCondition(p)?.status !== 'False').length;
  return going + starting + Math.max(0, replicas - live.length);
}

export function planRemediation(input: RemediationInput): RemediationPlan {
  const spec = resolveSpec(input.arcd.spec);
  const rem = spec.remediation;
  const nowMs = input.now.getTime();
  const evicting = input.evicting ?? new Set<string>();
  if (spec.paused) return idlePlan(input.state, 'Paused', 'spec.paused is true: nothing is remediated');
  if (rem.mode === 'Off') return idlePlan(input.state, 'ModeOff', 'spec.remediation.mode is Off: unhealthy pods are reported, never replaced');

  const live = input.pods.filter((p) => !isGoing(p, evicting));
  const unhealthy: Unhealthy[] = [];
  let healthyCount = 0;
  for (const pod of live) {
    const c = poolCondition(pod);
    if (c?.status === 'True') healthyCount++;
    if (c?.status !== 'False') continue;
    const name = podName(pod);
    unhealthy.push({ pod, name, condition: c, sinceMs: ms(c.lastTransitionTime) ?? input.falseSince?.get(name) ?? nowMs });
  }

  const image = judgeImage(input, spec, unhealthy, healthyCount);
  const storm = judgeStorm({ ...input, state: image.state }, spec, unhealthy.filter((u) => !image.faulty.has(u.name)), live.length);
  const plan: RemediationPlan = {
    evictions: [],
    wouldEvict: [],
    conditions: [],
    events: [...image.events, ...storm.events],
    records: image.records,
    state: storm.state,
    ...(image.degraded === undefined ? {} : { degraded: image.degraded }),
    ...(image.rollbackImage === undefined ? {} : { rollbackImage: image.rollbackImage }),
    ...(storm.requeueAfterMs === undefined ? {} : { requeueAfterMs: storm.requeueAfterMs }),
  };
  if (storm.hold !== undefined) {
    plan.conditions.push(storm.hold);
    return plan;
  }
  decideEvictions(input, spec, unhealthy, image.faulty, plan);
  return plan;
}

function decideEvictions(input: RemediationInput, spec: ResolvedSpec, unhealthy: readonly Unhealthy[], faulty: ReadonlySet<string>, plan: RemediationPlan): void {
  const rem = spec.remediation;
  const nowMs = input.now.getTime();
  const evicting = input.evicting ?? new Set<string>();
  const window = (plan.state.evictionTimes ?? []).filter((t) => (ms(t) ?? 0) > nowMs - HOUR_MS);
  plan.state = { ...plan.state, evictionTimes: window };
  const budget = Math.max(0, rem.maxPerHour - window.length);
  let room = rem.maxUnavailablePods - disrupted(input.pods, spec.replicas, evicting);
  const due: PlannedEviction[] = [];
  for (const u of unhealthy) {
    if (faulty.has(u.name)) continue;
    const dueMs = u.sinceMs + rem.unhealthySeconds * 1000;
    if (dueMs > nowMs) {
      plan.requeueAfterMs = minDelay(plan.requeueAfterMs, dueMs - nowMs);
      continue;
    }
    const last = lastRecordFor(input.history, u.name);
    const coolUntil = (ms(last?.time) ?? -Infinity) + rem.cooldownSeconds * 1000;
    if (coolUntil > nowMs) {
      plan.requeueAfterMs = minDelay(plan.requeueAfterMs, coolUntil - nowMs);
      continue;
    }
    const reason = u.condition.reason ?? 'Unknown';
    due.push({
      pod: u.name,
      ...(u.pod.metadata?.uid === undefined ? {} : { uid: u.pod.metadata.uid }),
      reason,
      message: `pool unhealthy (${reason}) for ${Math.round((nowMs - u.sinceMs) / 1000)} s: ${u.condition.message ?? ''}`.trim(),
      dueMs,
    });
  }
  due.sort((a, b) => a.dueMs - b.dueMs || a.pod.localeCompare(b.pod));

  const dryRun = rem.mode === 'DryRun';
  const chosen: PlannedEviction[] = [];
  for (const e of due) {
    if (room <= 0 || (!dryRun && chosen.length >= budget)) break;
    chosen.push(e);
    room--;
  }
  if (dryRun) {
    plan.wouldEvict = chosen;
    const now = rfc3339(input.now);
    for (const e of chosen) {
      plan.records.push({ time: now, action: 'Evict', pod: e.pod, reason: e.reason, result: 'DryRun', message: `DryRun: would evict; ${e.message}`.slice(0, 1024) });
      plan.events.push({ type: 'Normal', reason: 'WouldEvict', message: `DryRun: would evict pod ${e.pod} (${e.reason})`, pod: e.pod });
    }
  } else plan.evictions = chosen;

  const waiting = due.length - chosen.length;
  if (!dryRun && due.length > 0 && chosen.length >= budget && waiting > 0) {
    if (window.length === 0) {
      plan.conditions.push(pausedCondition('True', 'RateLimited', `spec.remediation.maxPerHour is 0: ${plural(waiting, 'pod')} wait, nothing is evicted`));
    } else {
      const next = Math.min(...window.map((t) => ms(t) ?? nowMs)) + HOUR_MS;
      plan.requeueAfterMs = minDelay(plan.requeueAfterMs, Math.max(1000, next - nowMs));
      plan.conditions.push(
        pausedCondition('True', 'RateLimited', `${plural(window.length, 'remediation')} in the last hour reached maxPerHour ${rem.maxPerHour}: ${plural(waiting, 'pod')} wait until ${rfc3339(new Date(next))}`),
      );
    }
    plan.events.push({ type: 'Warning', reason: 'RemediationRateLimited', message: `maxPerHour ${rem.maxPerHour} reached: unhealthy pods wait` });
    return;
  }
  const waitNote = waiting > 0 ? `; ${plural(waiting, 'pod')} wait for maxUnavailable ${String(rem.maxUnavailable)}` : '';
  plan.conditions.push(
    dryRun
      ? pausedCondition('False', 'DryRun', `spec.remediation.mode is DryRun: decisions are reported, nothing is evicted${waitNote}`)
      : pausedCondition('False', 'Active', `remediation is active${waitNote}`),
  );
}
