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
import type { Clock } from './queue.ts';
import { ANNOTATION_CONFIG_HASH, splitKey } from './types.ts';
import type { ArcDeployment, KubeObject, ObservedPod, ObservedSecret } from './types.ts';

/** What the controller reads from the informer caches. */
export interface ObjectCache {
  arcDeployment(namespace: string, name: string): ArcDeployment | undefined;
  get(kind: string, namespace: string, name: string): KubeObject | undefined;
  pods(namespace: string, instance: string): ObservedPod[];
}

export type ReconcileResult =
  | { requeue: 'none' }
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

  constructor(options: ControllerOptions) {
    this.o = options;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const arcd = this.o.cache.arcDeployment(namespace, name);
    if (arcd === undefined || arcd.metadata.deletionTimestamp !== undefined) {
      // Gone or going: the garbage collector removes what it owned (owner references).
      this.o.executor.forget(key);
      return { requeue: 'none' };
    }
    const log = this.o.logger.child({ arcdeployment: key, generation: arcd.metadata.generation });
    const spec = resolveSpec(arcd.spec);
    const pods = this.o.cache.pods(namespace, name);
    let deployment = this.o.cache.get('Deployment', namespace, name);

    if (spec.paused) {
      const status = computeStatus({ arcd, deployment, pods, secret: { state: 'unchecked' }, problems: [] }, new Date(this.o.clock.now()));
      if (await this.o.executor.writeStatus(arcd, status)) this.o.metrics?.statusUpdatesTotal.inc();
      log.debug('paused: status only');
      return { requeue: 'none' };
    }

    const { check, tokenHash } = await checkSecret(this.o.client, arcd);
    const problems: ApplyProblem[] = [];
    const specUnchanged = arcd.status?.observedGeneration === arcd.metadata.generation;
    for (const desired of desiredObjects(arcd, tokenHash === undefined ? {} : { tokenHash })) {
      // Never roll pods onto a Secret that is not there: the Deployment waits for it.
      if (desired.kind === 'Deployment' && check.state !== 'ok') continue;
      const observed = this.o.cache.get(desired.kind, namespace, desired.metadata.name);
      const outcome = await this.o.executor.applyObject(desired, observed, arcd.metadata.uid ?? '');
      this.o.metrics?.applyTotal.inc({ kind: outcome.kind, result: outcome.result });
      await this.report(arcd, outcome, specUnchanged, log);
      if (outcome.result === 'conflict') problems.push({ kind: outcome.kind, name: outcome.name, reason: 'ResourceConflict', message: outcome.message ?? '' });
      if (outcome.result === 'error') problems.push({ kind: outcome.kind, name: outcome.name, reason: 'ApplyFailed', message: outcome.message ?? '' });
      if (desired.kind === 'Deployment' && outcome.object !== undefined) deployment = outcome.object;
    }

    if (check.state === 'missing') {
      await this.o.events.record(involved(arcd), 'Warning', 'SecretNotFound', `Secret ${check.name} not found; the Deployment waits for it`);
    } else if (check.state === 'keyMissing') {
      await this.o.events.record(involved(arcd), 'Warning', 'SecretKeyNotFound', `Secret ${check.name} has no tokens under key "${check.key}"`);
    }

    const status = computeStatus({ arcd, deployment, pods, secret: check, problems }, new Date(this.o.clock.now()));
    if (await this.o.executor.writeStatus(arcd, status)) this.o.metrics?.statusUpdatesTotal.inc();

    if (check.state !== 'ok') return { requeue: 'backoff', why: check.state === 'missing' ? 'SecretNotFound' : 'SecretKeyNotFound' };
    if (problems.length > 0) return { requeue: 'backoff', why: problems[0]?.reason ?? 'ApplyFailed' };
    return { requeue: 'none' };
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
