// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it:
// a candidate takes the Lease when it is free or its holder has not renewed it for
// leaseDuration (measured on the candidate's own clock from when it last saw the record change,
// so clock skew between machines does not matter); the leader renews every retryPeriod and
// stops acting at once when it cannot renew within renewDeadline (< leaseDuration, so it stops
// before anyone else may start) or sees another holder. Writes use the Lease's resourceVersion,
// so two candidates can never both win. Releasing on shutdown hands over without waiting.
import type { Logger } from 'pino';
import { isConflict } from './errors.ts';
import { RESOURCES } from './kube.ts';
import type { KubeClient } from './kube.ts';
import type { Clock } from '@arcops/common';
import type { KubeObject, OwnerReference } from './types.ts';

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

export interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

export interface LeaderElectorOptions {
  client: Pick<KubeClient, 'get' | 'create' | 'replace'>;
  namespace: string;
  name: string;
  identity: string;
  /**
   * The pod this instance runs in: the holder makes it the Lease's owner, so that the garbage
   * collector deletes the Lease once the last holder's pod is gone (an uninstall leaves none).
   */
  ownerPod?: { name: string; uid: string };
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  clock: Clock;
  logger: Logger;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  /** Called when the observed holder changes (undefined = nobody). */
  onNewLeader?: (identity: string | undefined) => void;
  /** Called whenever the API server answered a read of the Lease (with the time of the answer). */
  onContact?: (ms: number) => void;
  random?: () => number;
}

/** RFC 3339 with microseconds (metav1.MicroTime). */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private readonly o: LeaderElectorOptions;
  private leading = false;
  private running = false;
  private timer: unknown;
  private deadline: unknown;
  private tick: Promise<void> | undefined;
  private observedRecord = '';
  private observedTime = 0;
  private observedHolder: string | undefined;
  private lease: Lease | undefined;

  constructor(options: LeaderElectorOptions) {
    this.o = options;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** The holder last seen in the Lease (undefined = none or unknown). */
  get leader(): string | undefined {
    return this.observedHolder;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /**
   * Stops campaigning. A leader first stops acting, then (with `release`) empties the Lease so
   * another instance takes over at once; without it the Lease simply runs out.
   */
  async stop({ release }: { release: boolean }): Promise<void> {
    this.running = false;
    this.o.clock.clearTimeout(this.timer);
    await this.tick;
    const wasLeading = this.leading;
    this.loseLeadership('stopped');
    if (wasLeading && release) await this.release();
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = this.o.clock.setTimeout(() => {
      this.tick = this.step();
    }, ms);
  }

  private async step(): Promise<void> {
    if (!this.running) return;
    let ok = false;
    try {
      ok = await this.tryAcquireOrRenew();
    } catch (err) {
      this.o.logger.warn({ err, lease: `${this.o.namespace}/${this.o.name}`, leading: this.leading }, 'lease request failed');
    }
    if (!this.running) return;
    if (ok) {
      if (!this.leading) this.becomeLeader();
      this.armDeadline();
    } else if (this.leading && this.observedHolder !== undefined && this.observedHolder !== this.o.identity) {
      this.loseLeadership(`the lease is held by ${this.observedHolder}`);
    }
    // Candidates retry with jitter so that they do not all ask at the same instant.
    const jitter = this.leading ? 0 : this.o.retryPeriodMs * 0.2 * (this.o.random ?? Math.random)();
    this.schedule(this.o.retryPeriodMs + jitter);
  }

  private armDeadline(): void {
    this.o.clock.clearTimeout(this.deadline);
    this.deadline = this.o.clock.setTimeout(() => this.loseLeadership(`could not renew the lease within ${this.o.renewDeadlineMs} ms`), this.o.renewDeadlineMs);
  }

  private becomeLeader(): void {
    this.leading = true;
    this.o.logger.info({ lease: `${this.o.namespace}/${this.o.name}` }, 'became leader');
    this.o.onStartedLeading();
  }

  private loseLeadership(why: string): void {
    this.o.clock.clearTimeout(this.deadline);
    if (!this.leading) return;
    this.leading = false;
    this.o.logger.warn({ why }, 'stopped leading');
    this.o.onStoppedLeading();
  }

  private observe(lease: Lease, now: number): void {
    const spec = lease.spec ?? {};
    const record = JSON.stringify([spec.holderIdentity ?? '', spec.renewTime ?? '', spec.acquireTime ?? '', spec.leaseTransitions ?? 0, spec.leaseDurationSeconds ?? 0]);
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedTime = now;
    }
    const holder = spec.holderIdentity || undefined;
    if (holder !== this.observedHolder) {
      this.observedHolder = holder;
      this.o.onNewLeader?.(holder);
    }
    this.lease = lease;
  }

  private desiredSpec(previous: LeaseSpec | undefined, now: number): LeaseSpec {
    const keep = previous?.holderIdentity === this.o.identity;
    return {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.max(1, Math.round(this.o.leaseDurationMs / 1000)),
      acquireTime: keep && previous?.acquireTime ? previous.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: keep ? (previous?.leaseTransitions ?? 0) : (previous?.leaseTransitions ?? 0) + (previous?.holderIdentity ? 1 : 0),
    };
  }

  private ownerReferences(): { ownerReferences?: OwnerReference[] } {
    const pod = this.o.ownerPod;
    return pod === undefined ? {} : { ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid }] };
  }

  /** One attempt; true when this instance holds the Lease afterwards. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { client, namespace, name } = this.o;
    const now = this.o.clock.now();
    const current = await client.get<Lease>(RESOURCES.lease, namespace, name);
    this.o.onContact?.(this.o.clock.now());
    if (current === undefined) {
      try {
        const created = await client.create<Lease>(RESOURCES.lease, namespace, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace, ...this.ownerReferences() },
          spec: this.desiredSpec(undefined, now),
        });
        this.observe(created, now);
        return true;
      } catch (err) {
        if (isConflict(err)) return false;
        throw err;
      }
    }
    this.observe(current, now);
    const spec = current.spec ?? {};
    const holder = spec.holderIdentity || undefined;
    const durationMs = (spec.leaseDurationSeconds ?? Math.round(this.o.leaseDurationMs / 1000)) * 1000;
    if (holder !== undefined && holder !== this.o.identity && this.observedTime + durationMs > now) return false;
    try {
      const updated = await client.replace<Lease>(RESOURCES.lease, namespace, name, {
        ...current,
        metadata: { ...current.metadata, ...this.ownerReferences() },
        spec: this.desiredSpec(spec, now),
      });
      this.observe(updated, now);
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  private async release(): Promise<void> {
    const lease = this.lease;
    if (lease?.spec?.holderIdentity !== this.o.identity) return;
    const now = this.o.clock.now();
    try {
      await this.o.client.replace<Lease>(RESOURCES.lease, this.o.namespace, this.o.name, {
        ...lease,
        spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, acquireTime: microTime(now), renewTime: microTime(now) },
      });
      this.o.logger.info({ lease: `${this.o.namespace}/${this.o.name}` }, 'released the lease');
    } catch (err) {
      this.o.logger.warn({ err }, 'could not release the lease; it will expire');
    }
  }
}
