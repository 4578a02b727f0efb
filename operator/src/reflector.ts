// List + watch of one resource type, with its cache. A Reflector never gives up: a watch that
// ends is resumed from the last resourceVersion, an expired one (410) is re-listed, a failed one
// is retried with backoff, and a watchdog aborts a watch that has been silent for longer than the
// server could possibly keep it open. Lists come in pages; each object is transformed (trimmed,
// trim.ts) and checked (decode.ts) before it is stored. An exception in a change handler is
// logged and never stops the watch.
import type { Clock } from '@arcops/common';
import type { Logger } from 'pino';
import { malformedEvent } from './decode.ts';
import { KubeApiError, isKubeApiError } from './errors.ts';
import type { KubeClient, ResourceType, WatchEvent } from './kube.ts';
import { objectKey } from './types.ts';
import type { KubeObject } from './types.ts';

export type ChangeType = 'add' | 'update' | 'delete';
export type RestartReason = 'error' | 'silent' | 'expired';

export interface ReflectorOptions {
  client: KubeClient;
  resource: ResourceType;
  /** Namespace to watch; '' = all. */
  namespace: string;
  labelSelector?: string;
  clock: Clock;
  logger: Logger;
  /** Server-side timeout of one watch request (a random extra of up to 25% is added). */
  watchTimeoutMs: number;
  /** How long past the watch's timeout a silent watch is tolerated (default 30 s). */
  silenceGraceMs?: number;
  /** How often the watchdog looks (default 5 s). */
  watchdogIntervalMs?: number;
  /** Retry delays after errors (default 1 s doubling to 30 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  random?: () => number;
  /** Applied to every listed or watched object before it is stored and handed on. */
  transform?: (object: KubeObject) => KubeObject;
  /** Items per page of a list (default 500, as client-go's pager). */
  listPageSize?: number;
  /** Files each stored object under this key (or none), for `byIndex` (client-go's indexers). */
  indexBy?: (object: KubeObject) => string | undefined;
  /** A change of the cache; on an update, `previous` is the object as it was cached before. */
  onChange: (type: ChangeType, object: KubeObject, previous?: KubeObject) => void;
  onRestart?: (reason: RestartReason) => void;
}

class SilentWatchError extends Error {
  constructor(silentMs: number) {
    super(`watch silent for ${silentMs} ms`);
    this.name = 'SilentWatchError';
  }
}

class StoppedError extends Error {
  constructor() {
    super('reflector stopped');
    this.name = 'StoppedError';
  }
}

const LIST_PAGE_SIZE = 500;

function storeKey(obj: KubeObject): string {
  return objectKey(obj.metadata?.namespace ?? '', obj.metadata?.name ?? '');
}

/** List + watch of one resource type (in one namespace or all), with its cache. */
export class Reflector {
  private readonly o: ReflectorOptions;
  private readonly store = new Map<string, KubeObject>();
  /** indexBy key -> store key -> object. */
  private readonly index = new Map<string, Map<string, KubeObject>>();
  private resourceVersion = '';
  private needList = true;
  private stopped = true;
  private synced = false;
  private loop: Promise<void> | undefined;
  private abort: AbortController | undefined;
  private watchTimeoutMs = 0;
  private lastActivity = 0;
  private watchdog: unknown;
  private wake: (() => void) | undefined;

  constructor(options: ReflectorOptions) {
    this.o = options;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  get description(): string {
    return `${this.o.resource.plural}${this.o.namespace ? ` in ${this.o.namespace}` : ''}`;
  }

  get(namespace: string, name: string): KubeObject | undefined {
    return this.store.get(objectKey(namespace, name));
  }

  list(): KubeObject[] {
    return [...this.store.values()];
  }

  /** The stored objects that `indexBy` files under `indexKey`. */
  byIndex(indexKey: string): KubeObject[] {
    const bucket = this.index.get(indexKey);
    return bucket === undefined ? [] : [...bucket.values()];
  }

  private put(key: string, obj: KubeObject): KubeObject | undefined {
    const old = this.store.get(key);
    this.store.set(key, obj);
    const indexBy = this.o.indexBy;
    if (indexBy !== undefined) {
      const was = old === undefined ? undefined : indexBy(old);
      const now = indexBy(obj);
      if (was !== undefined && was !== now) this.unindex(was, key);
      if (now !== undefined) {
        let bucket = this.index.get(now);
        if (bucket === undefined) this.index.set(now, (bucket = new Map<string, KubeObject>()));
        bucket.set(key, obj);
      }
    }
    return old;
  }

  private drop(key: string): void {
    const old = this.store.get(key);
    this.store.delete(key);
    const was = old === undefined ? undefined : this.o.indexBy?.(old);
    if (was !== undefined) this.unindex(was, key);
  }

  private unindex(indexKey: string, key: string): void {
    const bucket = this.index.get(indexKey);
    bucket?.delete(key);
    if (bucket?.size === 0) this.index.delete(indexKey);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
    this.scheduleWatchdog();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.o.clock.clearTimeout(this.watchdog);
    this.abort?.abort(new StoppedError());
    this.wake?.();
    await this.loop;
  }

  private scheduleWatchdog(): void {
    this.watchdog = this.o.clock.setTimeout(() => {
      if (this.stopped) return;
      this.checkSilence();
      this.scheduleWatchdog();
    }, this.o.watchdogIntervalMs ?? 5000);
  }

  private checkSilence(): void {
    if (this.abort === undefined) return;
    const now = this.o.clock.now();
    const limit = this.watchTimeoutMs + (this.o.silenceGraceMs ?? 30_000);
    if (now - this.lastActivity > limit) this.abort.abort(new SilentWatchError(now - this.lastActivity));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const handle = this.o.clock.setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        this.o.clock.clearTimeout(handle);
        this.wake = undefined;
        resolve();
      };
    });
  }

  private emit(type: ChangeType, obj: KubeObject, previous?: KubeObject): void {
    try {
      this.o.onChange(type, obj, previous);
    } catch (err) {
      this.o.logger.error({ err, resource: this.description, object: storeKey(obj) }, 'informer handler failed');
    }
  }

  private async relist(): Promise<void> {
    // In pages, each trimmed as it comes: thousands of full pods never sit in memory at once.
    // The pages are one snapshot; a continue token that expired (410) starts the list again.
    const trim = this.o.transform ?? ((o: KubeObject) => o);
    const fresh = new Map<string, KubeObject>();
    let resourceVersion: string;
    let next: string | undefined;
    do {
      const page = await this.o.client.list(this.o.resource, {
        namespace: this.o.namespace,
        ...(this.o.labelSelector === undefined ? {} : { labelSelector: this.o.labelSelector }),
        limit: this.o.listPageSize ?? LIST_PAGE_SIZE,
        ...(next === undefined ? {} : { continue: next }),
      });
      for (const item of page.items) {
        const problem = malformedEvent({ type: 'ADDED', object: item }, this.o.resource.namespaced);
        if (problem === undefined) fresh.set(storeKey(item), trim(item));
        else this.o.logger.warn({ resource: this.description, problem, object: JSON.stringify(item).slice(0, 500) }, 'malformed listed object skipped');
      }
      resourceVersion = page.resourceVersion;
      next = page.continue;
    } while (next !== undefined && !this.stopped);
    if (this.stopped) return;
    for (const [key, old] of this.store) {
      if (!fresh.has(key)) {
        this.drop(key);
        this.emit('delete', old);
      }
    }
    for (const [key, obj] of fresh) {
      const old = this.put(key, obj);
      if (old === undefined) this.emit('add', obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit('update', obj, old);
    }
    this.resourceVersion = resourceVersion;
    this.needList = false;
    this.synced = true;
  }

  private handle(event: WatchEvent): void {
    this.lastActivity = this.o.clock.now();
    const problem = malformedEvent(event, this.o.resource.namespaced);
    if (problem !== undefined) {
      // What a typed decoder would refuse never reaches the cache (decode.ts); the watch goes on.
      this.o.logger.warn({ resource: this.description, problem, event: JSON.stringify(event).slice(0, 500) }, 'malformed watch event skipped');
      return;
    }
    const obj = this.o.transform === undefined || event.type === 'BOOKMARK' ? event.object : this.o.transform(event.object);
    const rv = obj.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (event.type === 'BOOKMARK') return;
    const key = storeKey(obj);
    if (event.type === 'DELETED') {
      this.drop(key);
      this.emit('delete', obj);
      return;
    }
    const old = this.put(key, obj);
    if (old === undefined) this.emit('add', obj);
    else if (old.metadata?.resourceVersion !== rv) this.emit('update', obj, old);
  }

  private async watchOnce(): Promise<void> {
    const random = this.o.random ?? Math.random;
    this.watchTimeoutMs = Math.round(this.o.watchTimeoutMs * (1 + 0.25 * random()));
    this.abort = new AbortController();
    this.lastActivity = this.o.clock.now();
    try {
      await this.o.client.watch(
        this.o.resource,
        {
          namespace: this.o.namespace,
          ...(this.o.labelSelector === undefined ? {} : { labelSelector: this.o.labelSelector }),
          resourceVersion: this.resourceVersion,
          timeoutSeconds: Math.max(1, Math.round(this.watchTimeoutMs / 1000)),
          signal: this.abort.signal,
        },
        (event) => this.handle(event),
      );
    } finally {
      this.abort = undefined;
    }
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (this.needList) await this.relist();
        await this.watchOnce();
        failures = 0;
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof SilentWatchError) {
          this.o.logger.warn({ resource: this.description, err: err.message }, 'watch went silent; restarting it');
          this.o.onRestart?.('silent');
          continue;
        }
        if (isKubeApiError(err, 410)) {
          this.o.logger.info({ resource: this.description }, 'watch resourceVersion expired; listing again');
          this.needList = true;
          this.o.onRestart?.('expired');
          continue;
        }
        failures++;
        const base = this.o.retryBaseMs ?? 1000;
        const backoff = Math.min(this.o.retryMaxMs ?? 30_000, base * 2 ** Math.min(failures - 1, 20));
        // A 429 or 503 from the API server may say how long to stay away: never come back sooner.
        const delay = Math.max(backoff, err instanceof KubeApiError ? Math.min(this.o.retryMaxMs ?? 30_000, (err.retryAfterSeconds ?? 0) * 1000) : 0);
        this.o.logger.warn({ resource: this.description, err, retryInMs: delay, failures }, 'watch failed; retrying');
        this.o.onRestart?.('error');
        await this.sleep(delay);
      }
    }
  }
}
