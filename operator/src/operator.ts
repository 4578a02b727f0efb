// Puts the pieces together: informers fill the caches and enqueue keys; the leader elector
// decides whether this instance acts; workers take keys from the queue and reconcile them;
// a periodic resync re-enqueues every ArcDeployment. main.ts and the cluster tests build it the
// same way, with their own client, clock, logger and metrics.
import { systemClock } from '@arcops/common';
import type { Clock } from '@arcops/common';
import type { Logger } from 'pino';
import type { OperatorConfig } from './config.ts';
import { Controller } from './controller.ts';
import { KubeApiError, NotLeaderError } from './errors.ts';
import { EventRecorder } from './events.ts';
import { Executor } from './executor.ts';
import { Informers } from './informers.ts';
import type { InformersOptions } from './informers.ts';
import { RESOURCES } from './kube.ts';
import type { KubeClient } from './kube.ts';
import { LeaderElector } from './leader.ts';
import type { OperatorMetrics } from './metrics.ts';
import { Reachability } from './reachability.ts';
import { WorkQueue } from './queue.ts';
import { SIDECAR_CLUSTER_ROLE } from './spec.ts';
import { KIND } from './types.ts';
import type { Take } from './queue.ts';

export interface OperatorDeps {
  client: KubeClient;
  logger: Logger;
  metrics: OperatorMetrics;
  clock?: Clock;
  /** Test knobs for the reflectors (watchdog and retry timings). */
  reflector?: InformersOptions['reflector'];
}

export type OperatorSettings = Pick<
  OperatorConfig,
  | 'leaderElection'
  | 'leaseName'
  | 'leaseNamespace'
  | 'leaseDurationMs'
  | 'renewDeadlineMs'
  | 'retryPeriodMs'
  | 'identity'
  | 'watchNamespaces'
  | 'resyncMs'
  | 'watchTimeoutMs'
  | 'workers'
  | 'coalesceMs'
  | 'secretCacheMs'
  | 'backoffBaseMs'
  | 'backoffMaxMs'
  | 'queueQps'
  | 'queueBurst'
> &
  Partial<Pick<OperatorConfig, 'sidecarClusterRole' | 'podUid'>>;

export class Operator {
  readonly queue: WorkQueue;
  readonly informers: Informers;
  readonly controller: Controller;
  readonly elector: LeaderElector | undefined;
  private readonly config: OperatorSettings;
  private readonly deps: OperatorDeps;
  private readonly clock: Clock;
  private readonly log: Logger;
  private acting = false;
  private readonly reachability = new Reachability();
  /** deps.client, with the outcome of every request noted (arc_operator_ready{check="api_reachable"}). */
  private readonly client: KubeClient;
  private started = false;
  private stopping = false;
  private workers: Promise<void>[] = [];
  private resyncTimer: unknown;
  private syncWait: unknown;
  /** Reconciles run in all. */
  reconcileTotal = 0;

  constructor(config: OperatorSettings, deps: OperatorDeps) {
    this.config = config;
    this.deps = deps;
    this.clock = deps.clock ?? systemClock;
    this.log = deps.logger.child({ identity: config.identity });
    const { metrics } = deps;
    const client = this.reachability.wrap(deps.client);
    this.client = client;
    metrics.readiness = () => ({
      caches_synced: this.informers.hasSynced,
      leader: this.acting,
      api_reachable: this.reachability.reachable === true,
    });
    this.queue = new WorkQueue({
      clock: this.clock,
      baseDelayMs: config.backoffBaseMs,
      maxDelayMs: config.backoffMaxMs,
      qps: config.queueQps,
      burst: config.queueBurst,
      onDepth: (depth) => metrics.queueDepth.set(depth),
    });
    this.informers = new Informers({
      client,
      clock: this.clock,
      logger: this.log,
      namespaces: config.watchNamespaces,
      watchTimeoutMs: config.watchTimeoutMs,
      onKey: (key, kind) => {
        // Until every cache is filled, what the lists add is passed over once, after (enqueueAll):
        // coalesced, their pods and owned objects would make each ArcDeployment a second pass.
        if (!this.acting || !this.informers.hasSynced) return;
        // A change of the ArcDeployment itself is reconciled at once. Its pods and owned objects
        // change in bursts (a rollout, a scheduling pass, the status writes of the Deployment
        // controller): a short delay folds each burst into one reconcile, in the refresh lane
        // (usually a status write or a due remediation), ahead of creations and resyncs.
        if (kind === KIND) this.queue.add(key);
        else this.queue.addAfter(key, config.coalesceMs, 'refresh');
      },
      onRestart: (resource, reason) => metrics.watchRestartsTotal.inc({ resource, reason }),
      ...(deps.reflector === undefined ? {} : { reflector: deps.reflector }),
    });
    const executor = new Executor({ client, logger: this.log, mayWrite: () => this.acting });
    const events = new EventRecorder({ client, clock: this.clock, logger: this.log, instance: config.identity, metrics });
    this.controller = new Controller({
      client,
      cache: this.informers,
      executor,
      events,
      clock: this.clock,
      logger: this.log,
      metrics,
      secretCacheMs: config.secretCacheMs,
      ...(config.sidecarClusterRole === undefined ? {} : { sidecarClusterRole: config.sidecarClusterRole }),
    });
    if (config.leaderElection) {
      this.elector = new LeaderElector({
        client,
        namespace: config.leaseNamespace,
        name: config.leaseName,
        identity: config.identity,
        ...(config.podUid === undefined ? {} : { ownerPod: { name: config.identity, uid: config.podUid } }),
        leaseDurationMs: config.leaseDurationMs,
        renewDeadlineMs: config.renewDeadlineMs,
        retryPeriodMs: config.retryPeriodMs,
        clock: this.clock,
        logger: this.log,
        onStartedLeading: () => {
          metrics.leaderTransitionsTotal.inc({ event: 'acquired' });
          this.startActing();
        },
        onStoppedLeading: () => {
          metrics.leaderTransitionsTotal.inc({ event: this.stopping ? 'released' : 'lost' });
          this.stopActing();
        },
        onNewLeader: (holder) => this.log.info({ leader: holder ?? null }, 'leader observed'),
        onContact: (ms) => metrics.leaseContact.set(ms / 1000),
      });
    }
  }

  /** True while this instance reconciles (it leads, or leader election is off). */
  get isActing(): boolean {
    return this.acting;
  }

  /** Caches filled: the instance can take over at once (standby replicas are ready too). */
  get isReady(): boolean {
    return this.informers.hasSynced;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.informers.start();
    if (this.elector) this.elector.start();
    else this.startActing();
  }

  /**
   * Stops acting, then the leader election (releasing the Lease unless `release` is false, as
   * a crash would), the workers and the watches.
   */
  async stop({ release = true }: { release?: boolean } = {}): Promise<void> {
    this.stopping = true;
    this.stopActing();
    if (this.elector) await this.elector.stop({ release });
    this.queue.shutdown();
    await Promise.all(this.workers);
    await this.informers.stop();
  }

  private startActing(): void {
    if (this.acting || this.stopping) return;
    this.acting = true;
    this.deps.metrics.leader.set(1);
    this.log.info({ workers: this.config.workers }, 'acting: reconciling ArcDeployments');
    void this.checkSidecarClusterRole();
    // Only work from full caches: an empty cache would look like missing objects.
    const whenSynced = (): void => {
      if (!this.acting) return;
      if (!this.informers.hasSynced) {
        this.syncWait = this.clock.setTimeout(whenSynced, 100);
        return;
      }
      this.enqueueAll();
      // Plus refresh workers (half as many, at least one) that take only pod- and object-driven
      // passes. Workers outlive leadership changes: started once.
      if (this.workers.length === 0) {
        for (let i = 0; i < this.config.workers; i++) this.workers.push(this.work('any'));
        for (let i = 0; i < Math.max(1, Math.ceil(this.config.workers / 2)); i++) this.workers.push(this.work('refresh'));
      }
      this.scheduleResync();
    };
    whenSynced();
  }

  /**
   * Says so loudly when the ClusterRole the sidecars are bound to is missing: their pods would
   * never turn Ready (the sidecar could not write its pod condition). Not fatal: it may be
   * installed after the operator.
   */
  private async checkSidecarClusterRole(): Promise<void> {
    const name = this.config.sidecarClusterRole ?? SIDECAR_CLUSTER_ROLE;
    try {
      const found = await this.client.get(RESOURCES.clusterRole, '', name);
      if (found === undefined) {
        this.log.error(
          { clusterRole: name },
          `ClusterRole ${name} not found: sidecars cannot write their pod condition and pods will not turn Ready; install the operator's RBAC (deploy/rbac or the chart) or set SIDECAR_CLUSTER_ROLE`,
        );
      }
    } catch (err) {
      // A namespaced install may not read ClusterRoles: nothing to say then.
      this.log.debug({ clusterRole: name, err }, 'could not check the sidecar ClusterRole');
    }
  }

  private stopActing(): void {
    if (!this.acting) return;
    this.acting = false;
    this.deps.metrics.leader.set(0);
    // Only the acting instance reports storms: a standby's view would be stale.
    this.deps.metrics.storm.reset();
    this.clock.clearTimeout(this.syncWait);
    this.clock.clearTimeout(this.resyncTimer);
    this.queue.clear();
    this.log.warn('not acting any more');
  }

  private enqueueAll(): void {
    for (const key of this.informers.arcDeploymentKeys()) this.queue.add(key);
  }

  private scheduleResync(): void {
    this.clock.clearTimeout(this.resyncTimer);
    this.resyncTimer = this.clock.setTimeout(() => {
      if (!this.acting) return;
      this.enqueueAll();
      this.scheduleResync();
    }, this.config.resyncMs);
  }

  private async work(take: Take): Promise<void> {
    for (;;) {
      const key = await this.queue.get(take);
      if (key === undefined) return;
      try {
        if (this.acting) await this.reconcileOne(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async reconcileOne(key: string): Promise<void> {
    const { metrics } = this.deps;
    const started = this.clock.now();
    this.reconcileTotal++;
    let result: 'success' | 'requeue' | 'error' = 'success';
    try {
      const outcome = await this.controller.reconcile(key);
      if (outcome.requeue === 'backoff') {
        result = 'requeue';
        const delayMs = this.queue.addRateLimited(key);
        this.log.info({ arcdeployment: key, why: outcome.why, retryInMs: delayMs }, 'waiting; will look again');
      } else {
        this.queue.forget(key);
        // A remediation that comes due: as urgent as the pod change that started it.
        if (outcome.requeue === 'after') this.queue.addAfter(key, outcome.delayMs, 'refresh');
      }
    } catch (err) {
      result = 'error';
      if (err instanceof NotLeaderError) return; // leadership ended mid-reconcile: the new leader redoes it
      // A 429/503 with Retry-After: not before the API server asked (client-go does the same).
      const delayMs = this.queue.addRateLimited(key, err instanceof KubeApiError ? (err.retryAfterSeconds ?? 0) * 1000 : 0);
      this.log.error({ arcdeployment: key, err, retryInMs: delayMs }, 'reconcile failed');
    } finally {
      metrics.reconcileTotal.inc({ result });
      metrics.reconcileDuration.observe({ result }, (this.clock.now() - started) / 1000);
    }
  }
}
