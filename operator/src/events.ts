// Kubernetes Events (core/v1) about ArcDeployments, deduplicated like the kubelet's: the same
// object, type, reason and message within the window bumps `count` and `lastTimestamp` of one
// Event ("x5 over 3m" in kubectl describe) instead of creating another. Best effort: a failure to
// record an Event is logged, never fails a reconcile.
import { randomBytes } from 'node:crypto';
import { rfc3339 } from '@arcops/common';
import type { Logger } from 'pino';
import { isNotFound } from './errors.ts';
import { RESOURCES } from './kube.ts';
import type { KubeClient } from './kube.ts';
import type { OperatorMetrics } from './metrics.ts';
import type { KubeObject } from './types.ts';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorderOptions {
  client: KubeClient;
  clock: { now(): number };
  logger: Logger;
  /** reportingInstance: the operator's identity. */
  instance: string;
  metrics?: OperatorMetrics;
  /** Repeats within this window are folded into one Event (default 10 min). */
  dedupeWindowMs?: number;
  /** Most distinct Events remembered for folding (default 4096). */
  maxRemembered?: number;
}

interface Remembered {
  name: string;
  namespace: string;
  count: number;
  lastMs: number;
}

export const REPORTING_COMPONENT = 'arcops.dev/arc-operator';

export class EventRecorder {
  private readonly o: EventRecorderOptions;
  private readonly seen = new Map<string, Remembered>();

  constructor(options: EventRecorderOptions) {
    this.o = options;
  }

  async record(involved: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const meta = involved.metadata;
    if (!meta?.name || !meta.namespace) return;
    const key = `${meta.uid ?? `${meta.namespace}/${meta.name}`}\u0000${type}\u0000${reason}\u0000${message}`;
    const nowMs = this.o.clock.now();
    const now = rfc3339(new Date(nowMs));
    this.o.metrics?.eventsTotal.inc({ type, reason });
    const known = this.seen.get(key);
    try {
      if (known !== undefined && nowMs - known.lastMs < (this.o.dedupeWindowMs ?? 600_000)) {
        try {
          await this.o.client.patch(RESOURCES.event, known.namespace, known.name, { count: known.count + 1, lastTimestamp: now }, 'merge');
          known.count++;
          known.lastMs = nowMs;
          this.touch(key, known);
          return;
        } catch (err) {
          if (!isNotFound(err)) throw err;
          // The Event expired (the API server keeps them for an hour): start a new one.
        }
      }
      const name = `${meta.name}.${randomBytes(8).toString('hex')}`;
      await this.o.client.create(RESOURCES.event, meta.namespace, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace: meta.namespace },
        involvedObject: {
          apiVersion: involved.apiVersion,
          kind: involved.kind,
          name: meta.name,
          namespace: meta.namespace,
          ...(meta.uid === undefined ? {} : { uid: meta.uid }),
        },
        type,
        reason,
        message: message.slice(0, 1024),
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: 'arc-operator' },
        reportingComponent: REPORTING_COMPONENT,
        reportingInstance: this.o.instance,
      });
      this.touch(key, { name, namespace: meta.namespace, count: 1, lastMs: nowMs });
    } catch (err) {
      this.o.logger.warn({ err, reason, object: `${meta.namespace}/${meta.name}` }, 'could not record event');
    }
  }

  /** Most recently used last; the oldest is forgotten beyond the limit. */
  private touch(key: string, value: Remembered): void {
    this.seen.delete(key);
    this.seen.set(key, value);
    const limit = this.o.maxRemembered ?? 4096;
    while (this.seen.size > limit) {
      const oldest = this.seen.keys().next().value;
      if (oldest === undefined) break;
      this.seen.delete(oldest);
    }
  }
}
