// reconcile(key), in numbered steps: read the ArcDeployment and what it owns from the caches,
// remediate (remediation.ts decides, remediation-memory.ts remembers), check its token Secret,
// let the executor apply the owned objects that differ, and write the status rebuilt from what
// was observed. Nothing here loops: a result says whether the key should come
// back after a backoff (waiting on something the operator does not watch, like the Secret).
import type { Logger } from 'pino';
import { desiredObjects } from './desired.ts';
import type { EventRecorder } from './events.ts';
import type { ApplyOutcome, Executor } from './executor.ts';
import { NotLeaderError } from './errors.ts';
import { RESOURCES } from './kube.ts';
import type { KubeClient } from './kube.ts';
import type { OperatorMetrics } from './metrics.ts';
import { ownedNames } from './names.ts';
import type { Clock } from '@arcops/common';
import { RemediationMemory } from './remediation-memory.ts';
import type { Recalled } from './remediation-memory.ts';
import { EVICTING, remediationStatus } from './remediation-status.ts';
import type { EvictionResult, RemediationFields } from './remediation-status.ts';
import { isStorm, planRemediation } from './remediation.ts';
import type { PlannedEvent, PlannedEviction, RemediationPlan } from './remediation.ts';
import { SecretChecker } from './secrets.ts';
import { resolveSpec } from './spec.ts';
import { computeStatus } from './status.ts';
import type { ApplyProblem, SecretCheck } from './status.ts';
import { ANNOTATION_CONFIG_HASH, splitKey } from './types.ts';
import type { ArcDeployment, ArcDeploymentStatus, KubeObject, ObservedPod } from './types.ts';

/** One reconcile's observations, and remediation's state as this process knows it. */
interface Pass extends Recalled {
  key: string;
  arcd: ArcDeployment;
  deployment: KubeObject | undefined;
  pods: readonly ObservedPod[];
  now: Date;
  log: Logger;
}

/** A pass after remediation acted: its plan, the evictions' results, the object as written. */
interface Remediated extends Pass {
  plan: RemediationPlan;
  results: readonly EvictionResult[];
}

/**
 * What an owned object is applied after (the others start together): the Deployment after its
 * ServiceAccount, since pods naming a missing one are refused. It does not wait for the rest: a
 * Service (its cluster IP is allocated on the way) can take over a second on a busy API server.
 */
const APPLIED_AFTER: Readonly<Record<string, string>> = { Deployment: 'ServiceAccount' };

/** The pod-template hash of the Deployment as observed: pods carrying it run the current template. */
function observedTemplateHash(deployment: KubeObject | undefined): string | undefined {
  const d = deployment as { spec?: { template?: { metadata?: { annotations?: Record<string, string> } } } } | undefined;
  return d?.spec?.template?.metadata?.annotations?.[ANNOTATION_CONFIG_HASH];
}

/** What the controller reads from the informer caches. */
export interface ObjectCache {
  arcDeployment(namespace: string, name: string): ArcDeployment | undefined;
  get(kind: string, namespace: string, name: string): KubeObject | undefined;
  pods(namespace: string, instance: string): ObservedPod[];
}

export type ReconcileResult =
  | { requeue: 'none' }
  /** Something becomes due at a known time (a pod turns into a candidate, a cooldown ends). */
  | { requeue: 'after'; delayMs: number }
  /** Waiting on something unwatched (the Secret) or a refused write: try again after a backoff. */
  | { requeue: 'backoff'; why: string };

export interface ControllerOptions {
  client: KubeClient;
  cache: ObjectCache;
  executor: Executor;
  events: EventRecorder;
  clock: Clock;
  logger: Logger;
  metrics?: OperatorMetrics;
  /** How long what a read of a token Secret found is used again (secrets.ts); default 0. */
  secretCacheMs?: number;
  /** The ClusterRole the sidecars' RoleBindings refer to (SIDECAR_CLUSTER_ROLE in spec.ts by default). */
  sidecarClusterRole?: string;
}

function involved(arcd: ArcDeployment): KubeObject {
  return { apiVersion: arcd.apiVersion ?? 'arcops.dev/v1alpha1', kind: arcd.kind ?? 'ArcDeployment', metadata: arcd.metadata };
}

export class Controller {
  private readonly o: ControllerOptions;
  private readonly memory: RemediationMemory;
  private readonly secrets: SecretChecker;

  constructor(options: ControllerOptions) {
    this.o = options;
    this.memory = new RemediationMemory(options.clock);
    this.secrets = new SecretChecker({ client: options.client, clock: options.clock, ttlMs: options.secretCacheMs ?? 0 });
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    // 1. The ArcDeployment from the cache. Gone or going: forgotten; the garbage collector
    //    removes what it owned (owner references).
    const { namespace, name } = splitKey(key);
    const arcd = this.o.cache.arcDeployment(namespace, name);
    if (arcd === undefined || arcd.metadata.deletionTimestamp !== undefined) {
      this.o.executor.forget(key);
      this.memory.forget(key);
      this.o.metrics?.storm.remove({ arcdeployment_namespace: namespace, arcdeployment: name });
      return { requeue: 'none' };
    }
    // 2. What is observed: its pods, its Deployment, remediation's state.
    const pass = this.observe(key, arcd);
    // 3. Remediation first: an eviction that is due must not wait for the Secret check and the
    //    applies. The evictions are recorded before they are asked for.
    const remediated = await this.remediate(pass);
    // 4. Paused: the status only.
    if (resolveSpec(arcd.spec).paused) return this.reportPaused(remediated);
    // 5. The owned objects, then the status.
    try {
      return await this.converge(remediated);
    } catch (err) {
      // Whatever failed after evictions, their record must not be lost (budget, cooldowns).
      const { plan, results, previous, now } = remediated;
      if (results.length > 0) await this.writeStatus(key, remediated.arcd, { ...remediated.arcd.status }, remediationStatus(previous, plan, results, now), true);
      throw err;
    }
  }

  /** Reads the caches, and what this process remembers of remediation (remediation-memory.ts). */
  private observe(key: string, arcd: ArcDeployment): Pass {
    const { namespace, name } = arcd.metadata;
    const pods = this.o.cache.pods(namespace, name);
    const now = new Date(this.o.clock.now());
    return {
      key,
      arcd,
      deployment: this.o.cache.get('Deployment', namespace, name),
      pods,
      ...this.memory.recall(key, arcd, pods, now),
      now,
      log: this.o.logger.child({ arcdeployment: key, generation: arcd.metadata.generation }),
    };
  }

  /** The status only, with remediation's fields, while spec.paused. */
  private async reportPaused(pass: Remediated): Promise<ReconcileResult> {
    const { key, arcd, deployment, pods, plan, results, previous, now, log } = pass;
    const status = computeStatus({ arcd: this.withUnseenStatus(arcd), deployment, pods, secret: { state: 'unchecked' }, problems: [], extraConditions: plan.conditions }, now);
    await this.writeStatus(key, arcd, status, remediationStatus(previous, plan, results, now), results.length > 0);
    log.debug('paused: status only');
    return { requeue: 'none' };
  }

  /** The owned objects and the status, after remediation acted. */
  private async converge(pass: Remediated): Promise<ReconcileResult> {
    const { key, arcd, pods, plan, results, previous, now, log } = pass;
    const namespace = arcd.metadata.namespace;
    let deployment = pass.deployment;
    const ref = resolveSpec(arcd.spec).apiTokenSecretRef;
    const { check, tokenHash } = await this.secrets.check(namespace, ref.name, ref.key);
    const problems: ApplyProblem[] = [];
    const specUnchanged = arcd.status?.observedGeneration === arcd.metadata.generation;
    const effective = plan.rollbackImage === undefined ? arcd : { ...arcd, spec: { ...arcd.spec, image: plan.rollbackImage } };
    const objects = desiredObjects(effective, {
      ...(tokenHash === undefined ? {} : { tokenHash }),
      ...(this.o.sidecarClusterRole === undefined ? {} : { sidecarClusterRole: this.o.sidecarClusterRole }),
    });
    // Never roll pods onto a Secret that is not there: the Deployment waits for it.
    const wanted = objects.filter((d) => d.kind !== 'Deployment' || check.state === 'ok');
    // An object missing from the cache is created only if it does not exist (Executor.applyObject).
    const pairs = wanted.map((desired) => ({ desired, current: this.o.cache.get(desired.kind, namespace, desired.metadata.name) }));
    const outcomes = await this.applyAll(pairs, arcd);
    for (const outcome of outcomes) {
      this.o.metrics?.applyTotal.inc({ kind: outcome.kind, result: outcome.result });
      if (outcome.result === 'conflict') problems.push({ kind: outcome.kind, name: outcome.name, reason: 'ResourceConflict', message: outcome.message ?? '' });
      if (outcome.result === 'error') problems.push({ kind: outcome.kind, name: outcome.name, reason: 'ApplyFailed', message: outcome.message ?? '' });
      if (outcome.kind === 'Deployment' && outcome.object !== undefined) deployment = outcome.object;
    }
    // The sidecar's grant moved from a Role of its own to the shared ClusterRole: once the
    // binding refers to the ClusterRole, the old Role grants nothing and goes.
    if (outcomes.some((o) => o.kind === 'RoleBinding' && o.recreated === true)) await this.removeLegacyRole(arcd, log);

    const status = computeStatus(
      {
        arcd: this.withUnseenStatus(arcd),
        deployment,
        pods,
        secret: check,
        problems,
        extraConditions: plan.conditions,
        ...(plan.degraded === undefined ? {} : { degradedOverride: plan.degraded }),
      },
      now,
    );
    // Events never fail a pass: they are recorded while the status is written.
    await Promise.all([
      this.recordPass(arcd, outcomes, check, plan.rollbackImage !== undefined, specUnchanged, log),
      this.writeStatus(key, arcd, status, remediationStatus(previous, plan, results, now), results.length > 0),
    ]);

    if (check.state !== 'ok') return { requeue: 'backoff', why: check.state === 'missing' ? 'SecretNotFound' : 'SecretKeyNotFound' };
    if (problems.length > 0) return { requeue: 'backoff', why: problems[0]?.reason ?? 'ApplyFailed' };
    if (results.some((r) => r.result === 'Blocked' || r.result === 'Failed')) return { requeue: 'backoff', why: 'EvictionBlocked' };
    if (plan.requeueAfterMs !== undefined) return { requeue: 'after', delayMs: plan.requeueAfterMs };
    return { requeue: 'none' };
  }

  private async removeLegacyRole(arcd: ArcDeployment, log: Logger): Promise<void> {
    const name = ownedNames(arcd.metadata.name).legacyRole;
    try {
      const result = await this.o.executor.deleteOwned(RESOURCES.role, arcd.metadata.namespace, name, arcd.metadata.uid ?? '');
      if (result === 'deleted') log.info({ role: name }, 'deleted the Role the sidecar used before its RoleBinding referred to the shared ClusterRole');
    } catch (err) {
      // Left in place, it grants nothing (no binding refers to it) and goes with the ArcDeployment.
      log.warn({ role: name, err }, 'could not delete the Role the sidecar used before; it is left in place');
    }
  }

  /** The Events of one pass: one Created naming every new object, updates, problems, the Secret's state. */
  private async recordPass(arcd: ArcDeployment, outcomes: readonly ApplyOutcome[], check: SecretCheck, rollingBack: boolean, specUnchanged: boolean, log: Logger): Promise<void> {
    // A rollback changes the Deployment with the spec unchanged: it is no drift (RolledBack says it).
    const reported = outcomes.filter((o) => !(rollingBack && o.kind === 'Deployment' && o.result === 'updated'));
    const created = outcomes.filter((o) => o.result === 'created');
    await Promise.all([
      ...reported.map((o) => this.report(arcd, o, specUnchanged, log)),
      created.length === 0 ? undefined : this.o.events.record(involved(arcd), 'Normal', 'Created', `created ${created.map((o) => `${o.kind} ${o.name}`).join(', ')}`),
      check.state === 'missing' ? this.o.events.record(involved(arcd), 'Warning', 'SecretNotFound', `Secret ${check.name} not found; the Deployment waits for it`) : undefined,
      check.state === 'keyMissing' ? this.o.events.record(involved(arcd), 'Warning', 'SecretKeyNotFound', `Secret ${check.name} has no tokens under key "${check.key}"`) : undefined,
    ]);
  }

  /**
   * Applies the objects at once, each after what it depends on (APPLIED_AFTER), so that a
   * reconcile waits about as long as its slowest apply. An object whose dependency failed to
   * apply at all (no answer, 5xx) is not applied; every apply runs to its end before the first
   * such failure is thrown. A refusal (4xx) is an outcome, not a failure.
   */
  private async applyAll(objects: readonly { desired: KubeObject; current: KubeObject | undefined }[], arcd: ArcDeployment): Promise<ApplyOutcome[]> {
    const kindOf = (o: { desired: KubeObject }): string => o.desired.kind ?? '';
    const apply = (o: { desired: KubeObject; current: KubeObject | undefined }): Promise<ApplyOutcome> =>
      this.o.executor.applyObject(o.desired, o.current, arcd.metadata.uid ?? '');
    const first = new Map(objects.filter((o) => APPLIED_AFTER[kindOf(o)] === undefined).map((o) => [kindOf(o), apply(o)] as const));
    const pending = objects.map((o) => first.get(kindOf(o)) ?? (first.get(APPLIED_AFTER[kindOf(o)] ?? '') ?? Promise.resolve()).then(() => apply(o)));
    const settled = await Promise.allSettled(pending);
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    return settled.map((r) => (r as PromiseFulfilledResult<ApplyOutcome>).value);
  }

  /** `arcd` with the status this process wrote last if the cache does not show it yet (Executor.unseenStatus). */
  private withUnseenStatus(arcd: ArcDeployment): ArcDeployment {
    const unseen = this.o.executor.unseenStatus(arcd);
    return unseen === undefined ? arcd : { ...arcd, status: unseen };
  }

  /** Writes the status with remediation's fields if it differs; returns it if written. */
  private async writeStatus(key: string, arcd: ArcDeployment, status: ArcDeploymentStatus, fields: ReturnType<typeof remediationStatus>, record: boolean): Promise<ArcDeploymentStatus | undefined> {
    const next: ArcDeploymentStatus = { ...status, remediationState: fields.remediationState };
    if (fields.remediations !== undefined) next.remediations = fields.remediations;
    if (fields.lastRemediationTime !== undefined) next.lastRemediationTime = fields.lastRemediationTime;
    let written: boolean;
    try {
      written = await this.o.executor.writeStatus(arcd, next, { record });
    } catch (err) {
      // The evictions happened all the same: the next pass builds on their record (while the
      // ArcDeployment is unchanged) and writes it again, rather than forgetting them.
      if (record) this.memory.wrote(key, arcd, fields);
      throw err;
    }
    if (!written) return undefined;
    this.o.metrics?.statusUpdatesTotal.inc();
    this.memory.wrote(key, arcd, fields);
    return next;
  }

  /** Plans remediation and performs the plan: evictions (Auto), Events and metrics for every decision. */
  private async remediate(pass: Pass): Promise<Remediated> {
    const { key, arcd, pods, previous, now, log } = pass;
    // "The current template" is the one the Deployment carries now.
    const plan = planRemediation({
      arcd,
      pods,
      state: previous.remediationState ?? {},
      history: previous.remediations ?? [],
      evicting: pass.evicting,
      falseSince: pass.falseSince,
      now,
      templateHash: observedTemplateHash(pass.deployment),
    });
    this.o.metrics?.storm.set({ arcdeployment_namespace: arcd.metadata.namespace ?? '', arcdeployment: arcd.metadata.name ?? '' }, isStorm(plan) ? 1 : 0);
    if (pass.recheckAfterMs !== undefined) plan.requeueAfterMs = Math.min(plan.requeueAfterMs ?? Infinity, pass.recheckAfterMs);
    for (const e of plan.events) await this.event(arcd, pods, e);
    for (const r of plan.records) {
      const result = r.result === 'ImageFault' ? 'image_fault' : r.result === 'RolledBack' ? 'rolled_back' : 'dry_run';
      this.o.metrics?.remediationsTotal.inc({ reason: r.reason ?? 'Unknown', result });
    }
    for (const e of plan.wouldEvict) log.info({ pod: e.pod, reason: e.reason }, 'dry run: would evict');
    // As the API server has it now: the evictions recorded before they are asked for.
    const recorded = plan.evictions.length > 0 ? await this.recordIntents(key, arcd, plan, previous, now, log) : arcd;
    const results: EvictionResult[] = [];
    for (const e of plan.evictions) results.push(await this.evict(pass, e));
    return { ...pass, arcd: recorded, plan, results };
  }

  /** One eviction through the Eviction API, its metrics, log line and Event. */
  private async evict(pass: Pass, e: PlannedEviction): Promise<EvictionResult> {
    const { key, arcd, pods, log } = pass;
    const startedMs = this.o.clock.now();
    const outcome = await this.o.executor.evict(arcd.metadata.namespace, e.pod, e.uid);
    this.o.metrics?.remediationsTotal.inc({ reason: e.reason, result: outcome.result });
    if (outcome.result === 'evicted') {
      this.o.metrics?.remediationLatency.observe({ reason: e.reason }, Math.max(0, startedMs - e.dueMs) / 1000);
      this.memory.evictedNow(key, e.pod, startedMs);
      log.info({ pod: e.pod, reason: e.reason, latencyMs: startedMs - e.dueMs }, 'pod evicted');
      await this.event(arcd, pods, { type: 'Normal', reason: 'Evicted', message: `evicted pod ${e.pod}: ${e.message}`.slice(0, 1024), pod: e.pod });
    } else if (outcome.result === 'blocked') {
      log.info({ pod: e.pod, reason: e.reason, why: outcome.message }, 'eviction refused by the PodDisruptionBudget; will retry');
      await this.event(arcd, pods, { type: 'Warning', reason: 'EvictionBlocked', message: `pod ${e.pod} waits: the PodDisruptionBudget does not allow its eviction now`, pod: e.pod });
    } else {
      log.warn({ pod: e.pod, reason: e.reason, result: outcome.result, why: outcome.message }, 'eviction not done');
    }
    const result = outcome.result === 'evicted' ? 'Evicted' : outcome.result === 'blocked' ? 'Blocked' : outcome.result === 'gone' ? 'Gone' : 'Failed';
    return { eviction: e, result, ...(outcome.message === undefined ? {} : { message: outcome.message }) };
  }

  /**
   * Records the evictions as `Evicting` before asking for them, their times held in the hourly
   * budget, so that a process killed before it records their outcome leaves them in status for
   * the next pass or leader to settle (settleIntents). Not leading: nothing is evicted. Any other
   * failure (the API server refuses status writes): the evictions go ahead, a sick pod must not
   * wait on the status, and their outcome is recorded when writes go through.
   */
  private async recordIntents(key: string, arcd: ArcDeployment, plan: RemediationPlan, previous: RemediationFields, now: Date, log: Logger): Promise<ArcDeployment> {
    const intents = plan.evictions.map((eviction): EvictionResult => ({ eviction, result: EVICTING }));
    try {
      const status = await this.writeStatus(key, arcd, { ...arcd.status }, remediationStatus(previous, plan, intents, now), false);
      return status === undefined ? arcd : { ...arcd, status };
    } catch (err) {
      if (err instanceof NotLeaderError) throw err;
      log.warn({ err, pods: plan.evictions.map((e) => e.pod) }, 'could not record the evictions before asking for them; they go ahead');
      return arcd;
    }
  }

  private async event(arcd: ArcDeployment, pods: readonly ObservedPod[], e: PlannedEvent): Promise<void> {
    await this.o.events.record(involved(arcd), e.type, e.reason, e.message);
    if (e.pod === undefined) return;
    const pod = pods.find((p) => p.metadata?.name === e.pod);
    if (pod !== undefined) await this.o.events.record({ apiVersion: 'v1', kind: 'Pod', metadata: pod.metadata ?? {} }, e.type, e.reason, e.message);
  }

  private async report(arcd: ArcDeployment, outcome: ApplyOutcome, specUnchanged: boolean, log: Logger): Promise<void> {
    const what = `${outcome.kind} ${outcome.name}`;
    switch (outcome.result) {
      case 'created':
        // One Created Event per pass names them all (converge).
        log.info({ kind: outcome.kind, name: outcome.name }, 'created');
        return;
      case 'updated':
        if (specUnchanged && outcome.path?.endsWith(ANNOTATION_CONFIG_HASH)) {
          log.info({ kind: outcome.kind, name: outcome.name }, 'token secret changed: rolling the pods');
          await this.o.events.record(involved(arcd), 'Normal', 'SecretChanged', `updated ${what}: the API token Secret changed, the pods roll`);
        } else if (specUnchanged) {
          // The spec did not change since the last pass, yet the object differs: someone edited it.
          log.warn({ kind: outcome.kind, name: outcome.name, field: outcome.path }, 'drift corrected');
          await this.o.events.record(involved(arcd), 'Normal', 'DriftCorrected', `restored ${what}: ${outcome.path ?? 'a field'} differed from the declared state`);
        } else {
          log.info({ kind: outcome.kind, name: outcome.name, field: outcome.path }, 'updated');
          await this.o.events.record(involved(arcd), 'Normal', 'Updated', `updated ${what} to the new spec`);
        }
        return;
      case 'conflict':
        log.warn({ kind: outcome.kind, name: outcome.name }, 'owned object conflict');
        await this.o.events.record(involved(arcd), 'Warning', 'ResourceConflict', outcome.message ?? what);
        return;
      case 'error':
        log.warn({ kind: outcome.kind, name: outcome.name, err: outcome.message }, 'apply refused');
        await this.o.events.record(involved(arcd), 'Warning', 'ApplyFailed', `${what}: ${outcome.message ?? 'refused'}`);
        return;
      default:
        return;
    }
  }
}
