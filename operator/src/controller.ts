// reconcile(key): read the ArcDeployment and what it owns from the caches, check its token
// Secret, plan the owned objects, let the executor apply what differs, and write the status
// rebuilt from what was observed. Nothing here loops: a result says whether the key should come
// back after a backoff (waiting on something the operator does not watch, like the Secret).
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { EventRecorder } from './events.ts';
import type { ApplyOutcome, Executor } from './executor.ts';
import { RESOURCES } from './kube.ts';
import type { KubeClient } from './kube.ts';
import type { OperatorMetrics } from './metrics.ts';
import { computeStatus, desiredObjects, resolveSpec } from './plan.ts';
import type { ApplyProblem, SecretCheck } from './plan.ts';
import { planRemediation, remediationStatus } from './remediation.ts';
import type { EvictionResult, PlannedEvent, RemediationPlan } from './remediation.ts';
import type { Clock } from './queue.ts';
import { ANNOTATION_CONFIG_HASH, splitKey } from './types.ts';
import type { ArcDeployment, ArcDeploymentStatus, KubeObject, ObservedPod, ObservedSecret, RemediationRecord, RemediationState } from './types.ts';

/** What this process last wrote of remediation's status, until the cache shows it. */
interface Remembered {
  basedOn: string | undefined;
  remediations?: RemediationRecord[];
  lastRemediationTime?: string;
  remediationState?: RemediationState;
}

/** One reconcile's observations and remediation outcome, handed from remediation to the rest. */
interface Pass {
  key: string;
  arcd: ArcDeployment;
  deployment: KubeObject | undefined;
  pods: readonly ObservedPod[];
  plan: RemediationPlan;
  results: readonly EvictionResult[];
  previous: Omit<Remembered, 'basedOn'>;
  now: Date;
  log: Logger;
}

/** How long a pod this process evicted is taken as going, if the cache does not show it. */
const EVICTING_TTL_MS = 30_000;

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
}

/** Checks the token Secret and hashes its tokens (a new token must roll the pods). */
async function checkSecret(client: KubeClient, arcd: ArcDeployment): Promise<{ check: SecretCheck; tokenHash?: string }> {
  const spec = resolveSpec(arcd.spec);
  const { name, key } = spec.apiTokenSecretRef;
  const secret = await client.get<ObservedSecret>(RESOURCES.secret, arcd.metadata.namespace, name);
  if (secret === undefined) return { check: { state: 'missing', name } };
  const value = secret.data?.[key];
  if (value === undefined || Buffer.from(value, 'base64').toString('utf8').trim() === '') return { check: { state: 'keyMissing', name, key } };
  return { check: { state: 'ok' }, tokenHash: createHash('sha256').update(value).digest('hex').slice(0, 16) };
}

function involved(arcd: ArcDeployment): KubeObject {
  return { apiVersion: arcd.apiVersion ?? 'arcops.dev/v1alpha1', kind: arcd.kind ?? 'ArcDeployment', metadata: arcd.metadata };
}

export class Controller {
  private readonly o: ControllerOptions;
  private readonly remembered = new Map<string, Remembered>();
  /** Per ArcDeployment: pods evicted by this process, and when. */
  private readonly evicting = new Map<string, Map<string, number>>();

  constructor(options: ControllerOptions) {
    this.o = options;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const arcd = this.o.cache.arcDeployment(namespace, name);
    if (arcd === undefined || arcd.metadata.deletionTimestamp !== undefined) {
      // Gone or going: the garbage collector removes what it owned (owner references).
      this.o.executor.forget(key);
      this.remembered.delete(key);
      this.evicting.delete(key);
      return { requeue: 'none' };
    }
    const log = this.o.logger.child({ arcdeployment: key, generation: arcd.metadata.generation });
    const spec = resolveSpec(arcd.spec);
    const pods = this.o.cache.pods(namespace, name);
    const deployment = this.o.cache.get('Deployment', namespace, name);

    const now = new Date(this.o.clock.now());
    const previous = this.previousRemediation(key, arcd);
    const evicting = this.evictingPods(key, pods);
    const baseInput = { arcd, pods, state: previous.remediationState ?? {}, history: previous.remediations ?? [], evicting, now };

    // Remediation first: an eviction that is due must not wait for the Secret check and the
    // applies. "The current template" is the one the Deployment carries now.
    const plan = planRemediation({ ...baseInput, templateHash: observedTemplateHash(deployment) });
    const results = await this.remediate(arcd, pods, plan, log);

    if (spec.paused) {
      const status = computeStatus({ arcd, deployment, pods, secret: { state: 'unchecked' }, problems: [], extraConditions: plan.conditions }, now);
      await this.writeStatus(key, arcd, status, remediationStatus(previous, plan, results, now), results.length > 0);
      log.debug('paused: status only');
      return { requeue: 'none' };
    }

    try {
      return await this.converge({ key, arcd, deployment, pods, plan, results, previous, now, log });
    } catch (err) {
      // Whatever failed after evictions, their record must not be lost (budget, cooldowns).
      if (results.length > 0) await this.writeStatus(key, arcd, { ...arcd.status }, remediationStatus(previous, plan, results, now), true);
      throw err;
    }
  }

  /** The owned objects and the status, after remediation acted. */
  private async converge(pass: Pass): Promise<ReconcileResult> {
    const { key, arcd, pods, plan, results, previous, now, log } = pass;
    const namespace = arcd.metadata.namespace;
    let deployment = pass.deployment;
    const { check, tokenHash } = await checkSecret(this.o.client, arcd);
    const problems: ApplyProblem[] = [];
    const specUnchanged = arcd.status?.observedGeneration === arcd.metadata.generation;
    const effective = plan.rollbackImage === undefined ? arcd : { ...arcd, spec: { ...arcd.spec, image: plan.rollbackImage } };
    const objects = desiredObjects(effective, tokenHash === undefined ? {} : { tokenHash });
    for (const desired of objects) {
      // Never roll pods onto a Secret that is not there: the Deployment waits for it.
      if (desired.kind === 'Deployment' && check.state !== 'ok') continue;
      const observed = this.o.cache.get(desired.kind, namespace, desired.metadata.name);
      const outcome = await this.o.executor.applyObject(desired, observed, arcd.metadata.uid ?? '');
      this.o.metrics?.applyTotal.inc({ kind: outcome.kind, result: outcome.result });
      // A rollback changes the Deployment with the spec unchanged: it is no drift (RolledBack says it).
      if (!(plan.rollbackImage !== undefined && desired.kind === 'Deployment' && outcome.result === 'updated')) await this.report(arcd, outcome, specUnchanged, log);
      if (outcome.result === 'conflict') problems.push({ kind: outcome.kind, name: outcome.name, reason: 'ResourceConflict', message: outcome.message ?? '' });
      if (outcome.result === 'error') problems.push({ kind: outcome.kind, name: outcome.name, reason: 'ApplyFailed', message: outcome.message ?? '' });
      if (desired.kind === 'Deployment' && outcome.object !== undefined) deployment = outcome.object;
    }

    if (check.state === 'missing') {
      await this.o.events.record(involved(arcd), 'Warning', 'SecretNotFound', `Secret ${check.name} not found; the Deployment waits for it`);
    } else if (check.state === 'keyMissing') {
      await this.o.events.record(involved(arcd), 'Warning', 'SecretKeyNotFound', `Secret ${check.name} has no tokens under key "${check.key}"`);
    }

    const status = computeStatus(
      { arcd, deployment, pods, secret: check, problems, extraConditions: plan.conditions, ...(plan.degraded === undefined ? {} : { degradedOverride: plan.degraded }) },
      now,
    );
    await this.writeStatus(key, arcd, status, remediationStatus(previous, plan, results, now), results.length > 0);

    if (check.state !== 'ok') return { requeue: 'backoff', why: check.state === 'missing' ? 'SecretNotFound' : 'SecretKeyNotFound' };
    if (problems.length > 0) return { requeue: 'backoff', why: problems[0]?.reason ?? 'ApplyFailed' };
    if (results.some((r) => r.result === 'Blocked' || r.result === 'Failed')) return { requeue: 'backoff', why: 'EvictionBlocked' };
    if (plan.requeueAfterMs !== undefined) return { requeue: 'after', delayMs: plan.requeueAfterMs };
    return { requeue: 'none' };
  }

  /** Remediation's status as this process last wrote it when the cache does not show it yet. */
  private previousRemediation(key: string, arcd: ArcDeployment): Omit<Remembered, 'basedOn'> {
    const mine = this.remembered.get(key);
    if (mine !== undefined && mine.basedOn === arcd.metadata.resourceVersion) return mine;
    this.remembered.delete(key);
    return arcd.status ?? {};
  }

  /** Pods this process evicted that the cache still shows as live (for a few seconds at most). */
  private evictingPods(key: string, pods: readonly ObservedPod[]): Set<string> {
    const mine = this.evicting.get(key);
    if (mine === undefined) return new Set();
    const nowMs = this.o.clock.now();
    for (const [name, at] of mine) {
      const pod = pods.find((p) => p.metadata?.name === name);
      if (pod === undefined || pod.metadata?.deletionTimestamp !== undefined || nowMs - at > EVICTING_TTL_MS) mine.delete(name);
    }
    return new Set(mine.keys());
  }

  private async writeStatus(key: string, arcd: ArcDeployment, status: ArcDeploymentStatus, fields: ReturnType<typeof remediationStatus>, record: boolean): Promise<void> {
    const next: ArcDeploymentStatus = { ...status, remediationState: fields.remediationState };
    if (fields.remediations !== undefined) next.remediations = fields.remediations;
    if (fields.lastRemediationTime !== undefined) next.lastRemediationTime = fields.lastRemediationTime;
    if (await this.o.executor.writeStatus(arcd, next, { record })) {
      this.o.metrics?.statusUpdatesTotal.inc();
      this.remembered.set(key, { basedOn: arcd.metadata.resourceVersion, ...fields });
    }
  }

  /** Performs the plan: evictions (Auto), Events and metrics for every decision. */
  private async remediate(arcd: ArcDeployment, pods: readonly ObservedPod[], plan: RemediationPlan, log: Logger): Promise<EvictionResult[]> {
    const key = `${arcd.metadata.namespace}/${arcd.metadata.name}`;
    for (const e of plan.events) await this.event(arcd, pods, e);
    for (const r of plan.records) {
      const result = r.result === 'ImageFault' ? 'image_fault' : r.result === 'RolledBack' ? 'rolled_back' : 'dry_run';
      this.o.metrics?.remediationsTotal.inc({ reason: r.reason ?? 'Unknown', result });
    }
    for (const e of plan.wouldEvict) log.info({ pod: e.pod, reason: e.reason }, 'dry run: would evict');
    const results: EvictionResult[] = [];
    for (const e of plan.evictions) {
      const startedMs = this.o.clock.now();
      const outcome = await this.o.executor.evict(arcd.metadata.namespace, e.pod, e.uid);
      this.o.metrics?.remediationsTotal.inc({ reason: e.reason, result: outcome.result });
      if (outcome.result === 'evicted') {
        this.o.metrics?.remediationLatency.observe({ reason: e.reason }, Math.max(0, startedMs - e.dueMs) / 1000);
        let mine = this.evicting.get(key);
        if (mine === undefined) this.evicting.set(key, (mine = new Map<string, number>()));
        mine.set(e.pod, startedMs);
        log.info({ pod: e.pod, reason: e.reason, latencyMs: startedMs - e.dueMs }, 'pod evicted');
        await this.event(arcd, pods, { type: 'Normal', reason: 'Evicted', message: `evicted pod ${e.pod}: ${e.message}`.slice(0, 1024), pod: e.pod });
      } else if (outcome.result === 'blocked') {
        log.info({ pod: e.pod, reason: e.reason, why: outcome.message }, 'eviction refused by the PodDisruptionBudget; will retry');
        await this.event(arcd, pods, { type: 'Warning', reason: 'EvictionBlocked', message: `pod ${e.pod} waits: the PodDisruptionBudget does not allow its eviction now`, pod: e.pod });
      } else {
        log.warn({ pod: e.pod, reason: e.reason, result: outcome.result, why: outcome.message }, 'eviction not done');
      }
      const result = outcome.result === 'evicted' ? 'Evicted' : outcome.result === 'blocked' ? 'Blocked' : outcome.result === 'gone' ? 'Gone' : 'Failed';
      results.push({ eviction: e, result, ...(outcome.message === undefined ? {} : { message: outcome.message }) });
    }
    return results;
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
        log.info({ kind: outcome.kind, name: outcome.name }, 'created');
        await this.o.events.record(involved(arcd), 'Normal', 'Created', `created ${what}`);
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
