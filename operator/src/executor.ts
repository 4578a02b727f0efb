// The thin, effectful half of the controller: performs what diff.ts decides. Server-side apply
// with the field manager `arc-operator` and force (our fields are ours: a hand edit is put back),
// nothing written when the observed object already matches, and the ArcDeployment's status
// written through the status subresource only when it changed.
import type { Logger } from 'pino';
import { decideApply, differencePath, innermostList, jsonPointer, valueAt } from './diff.ts';
import { KubeApiError, NotLeaderError, describeError, isKubeApiError, isNotFound } from './errors.ts';
import { RESOURCES, resourceForKind } from './kube.ts';
import type { KubeClient, ResourceType } from './kube.ts';
import { stableStringify } from './hash.ts';
import { API_VERSION, FIELD_MANAGER, KIND, objectKey } from './types.ts';
import type { ArcDeployment, ArcDeploymentStatus, KubeObject } from './types.ts';

export type ApplyResult = 'unchanged' | 'created' | 'updated' | 'conflict' | 'error';

/** A resourceVersion no stored object has: an apply carrying it only ever creates (createOnly). */
const CREATE_ONLY_RESOURCE_VERSION = '1';

export interface ApplyOutcome {
  kind: string;
  name: string;
  result: ApplyResult;
  /** The object as the API server returned it (or as observed when unchanged). */
  object?: KubeObject;
  /** For updates: the first field that differed, or an owned field no longer desired. */
  path?: string;
  why?: 'differs' | 'stale-field';
  /** For conflicts and errors: what a user should read. */
  message?: string;
  /** The object was deleted and made again: a field that cannot change (a RoleBinding's roleRef) differed. */
  recreated?: boolean;
}

/** Fields the API server never lets change: an object that differs in one is made again. */
function immutableDifference(desired: KubeObject, current: KubeObject | undefined): string | undefined {
  if (current === undefined || desired.kind !== 'RoleBinding') return undefined;
  return stableStringify((desired as { roleRef?: unknown }).roleRef) === stableStringify((current as { roleRef?: unknown }).roleRef) ? undefined : '/roleRef';
}

export interface ExecutorOptions {
  client: KubeClient;
  logger: Logger;
  /** Checked before every write: a process that lost the Lease must not write. */
  mayWrite: () => boolean;
  fieldManager?: string;
}

export class Executor {
  private readonly o: ExecutorOptions;
  private readonly fieldManager: string;
  /** Status last written per ArcDeployment key, and the resourceVersion it was computed from. */
  private readonly lastStatus = new Map<string, { basedOn: string | undefined; status: string }>();

  constructor(options: ExecutorOptions) {
    this.o = options;
    this.fieldManager = options.fieldManager ?? FIELD_MANAGER;
  }

  private guard(): void {
    if (!this.o.mayWrite()) throw new NotLeaderError();
  }

  /**
   * Brings one owned object to its desired state. `observed` comes from the informer cache.
   * When the cache has nothing the object is created only if it does not exist (`createOnly`):
   * one that exists without our labels is never taken over, and the common case costs one
   * request, not a read and then a write.
   */
  async applyObject(desired: KubeObject, observed: KubeObject | undefined, ownerUid: string): Promise<ApplyOutcome> {
    const kind = desired.kind ?? '?';
    const name = desired.metadata?.name ?? '?';
    const namespace = desired.metadata?.namespace ?? '';
    const res = resourceForKind(kind);
    let current = observed;
    let decision = decideApply(desired, current, ownerUid, this.fieldManager);
    if (decision.action === 'create') {
      const created = await this.createOnly(res, desired);
      if (created !== 'exists') return created;
      // There after all (not ours, or the cache is behind): judge it as it is.
      current = await this.o.client.get(res, namespace, name);
      decision = decideApply(desired, current, ownerUid, this.fieldManager);
    }
    switch (decision.action) {
      case 'none':
        return { kind, name, result: 'unchanged', ...(current === undefined ? {} : { object: current }) };
      case 'conflict':
        return { kind, name, result: 'conflict', message: decision.message };
      default:
        break;
    }
    this.guard();
    const immutable = decision.action === 'update' ? immutableDifference(desired, current) : undefined;
    try {
      if (immutable !== undefined && current !== undefined) return await this.recreate(res, desired, current, immutable);
      let applied: KubeObject;
      try {
        applied = await this.apply(res, desired);
      } catch (err) {
        // A list another writer changed can make the merged object invalid (two Service ports
        // both named http): put our list back first.
        if (decision.action !== 'update' || current === undefined || !isKubeApiError(err, 422)) throw err;
        applied = await this.repairList(res, desired, current, differencePath(desired, current));
      }
      // Server-side apply never removes list elements another writer added (an env var set by
      // hand, a port under another key): replace such a list with ours, then apply again.
      for (let i = 0; i < 4; i++) {
        const left = differencePath(desired, applied);
        if (left === undefined) break;
        applied = await this.repairList(res, desired, applied, left);
      }
      if (decision.action === 'create') return { kind, name, result: 'created', object: applied };
      return { kind, name, result: 'updated', object: applied, path: decision.path, why: decision.why };
    } catch (err) {
      // The API server refused this object (invalid, forbidden, immutable field): report it and
      // carry on with the others. Transport failures and 5xx are retried as a whole.
      if (err instanceof KubeApiError && err.statusCode >= 400 && err.statusCode < 500 && err.statusCode !== 429) {
        return { kind, name, result: 'error', message: err.message };
      }
      throw err;
    }
  }

  /**
   * Deletes the object as it was observed (uid and resourceVersion as preconditions: one changed
   * or made again meanwhile is left alone) and applies the desired one in its place.
   */
  private async recreate(res: ResourceType, desired: KubeObject, current: KubeObject, path: string): Promise<ApplyOutcome> {
    const kind = desired.kind ?? '?';
    const name = desired.metadata?.name ?? '?';
    const namespace = desired.metadata?.namespace ?? '';
    this.o.logger.info({ kind, name, field: path }, 'making the object again: a field that cannot change differs');
    try {
      await this.o.client.delete(res, namespace, name, {
        ...(current.metadata?.uid === undefined ? {} : { uid: current.metadata.uid }),
        ...(current.metadata?.resourceVersion === undefined ? {} : { resourceVersion: current.metadata.resourceVersion }),
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const applied = await this.apply(res, desired);
    return { kind, name, result: 'updated', object: applied, path, why: 'differs', recreated: true };
  }

  /**
   * Deletes an object this ArcDeployment owns and no longer wants (found by name; one that is
   * not controlled by `ownerUid` is never touched): `deleted`, `absent` or `foreign`.
   */
  async deleteOwned(res: ResourceType, namespace: string, name: string, ownerUid: string): Promise<'deleted' | 'absent' | 'foreign'> {
    const current = await this.o.client.get(res, namespace, name);
    if (current === undefined) return 'absent';
    if (!current.metadata?.ownerReferences?.some((r) => r.controller === true && r.uid === ownerUid)) return 'foreign';
    this.guard();
    try {
      await this.o.client.delete(res, namespace, name, { ...(current.metadata.uid === undefined ? {} : { uid: current.metadata.uid }) });
    } catch (err) {
      if (isNotFound(err)) return 'absent';
      throw err;
    }
    return 'deleted';
  }

  /**
   * Creates the object unless one of its name exists: a server-side apply whose resourceVersion
   * no stored object can have (etcd's first write is revision 2). The API server ignores it when
   * it creates, and refuses the apply with 409 when the object exists, force or not. `exists`
   * then; an API server that refuses the request itself for its resourceVersion gets the plain
   * read-then-apply instead (`exists` too).
   */
  private async createOnly(res: ResourceType, desired: KubeObject): Promise<ApplyOutcome | 'exists'> {
    const kind = desired.kind ?? '?';
    const name = desired.metadata?.name ?? '?';
    this.guard();
    try {
      const applied = await this.o.client.apply(res, { ...desired, metadata: { ...desired.metadata, resourceVersion: CREATE_ONLY_RESOURCE_VERSION } }, { fieldManager: this.fieldManager, force: true });
      return { kind, name, result: 'created', object: applied };
    } catch (err) {
      if (isKubeApiError(err, 409)) return 'exists';
      if ((isKubeApiError(err, 400) || isKubeApiError(err, 422)) && /resourceVersion/i.test(err.message)) return 'exists';
      if (err instanceof KubeApiError && err.statusCode >= 400 && err.statusCode < 500 && err.statusCode !== 429) {
        return { kind, name, result: 'error', message: err.message };
      }
      throw err;
    }
  }

  private apply(res: ResourceType, desired: KubeObject): Promise<KubeObject> {
    this.guard();
    return this.o.client.apply(res, desired, { fieldManager: this.fieldManager, force: true });
  }

  /**
   * Replaces the list that holds the difference at `path` with the desired one, then applies
   * again. The JSON patch is guarded: every list element on the way is tested by name (so a
   * reordered list is never patched at the wrong index), or else the whole object by its
   * resourceVersion.
   */
  private async repairList(res: ResourceType, desired: KubeObject, observed: KubeObject, path: string[] | undefined): Promise<KubeObject> {
    const list = path === undefined ? undefined : innermostList(desired, path);
    if (list === undefined) throw new KubeApiError(422, 'Invalid', `cannot bring ${path?.join('.') ?? 'the object'} to its declared value`, { method: 'APPLY', path: '' });
    const guards: { op: 'test'; path: string; value: unknown }[] = [];
    for (let i = 1; i < list.length; i++) {
      if (!Array.isArray(valueAt(desired, list.slice(0, i)))) continue;
      const name = (valueAt(desired, list.slice(0, i + 1)) as { name?: unknown } | undefined)?.name;
      if (typeof name !== 'string') {
        guards.length = 0;
        break;
      }
      guards.push({ op: 'test', path: jsonPointer([...list.slice(0, i + 1), 'name']), value: name });
    }
    const namespace = desired.metadata?.namespace ?? '';
    const name = desired.metadata?.name ?? '';
    if (guards.length === 0) {
      const fresh = (await this.o.client.get(res, namespace, name)) ?? observed;
      guards.push({ op: 'test', path: '/metadata/resourceVersion', value: fresh.metadata?.resourceVersion });
    }
    this.guard();
    this.o.logger.info({ kind: desired.kind, name, list: list.join('.') }, 'replacing a list changed by another writer');
    await this.o.client.patch(res, namespace, name, [...guards, { op: 'add', path: jsonPointer(list), value: valueAt(desired, list) }], 'json');
    return this.apply(res, desired);
  }

  /**
   * Evicts a pod through the Eviction API (never a delete): `evicted`, `blocked` (429: the
   * PodDisruptionBudget does not allow it now), `gone` (404, or 409 when the name is another
   * pod's now) or `failed` (anything else the API server refused).
   */
  async evict(namespace: string, name: string, uid?: string): Promise<{ result: 'evicted' | 'blocked' | 'gone' | 'failed'; message?: string }> {
    this.guard();
    try {
      await this.o.client.evict(namespace, name, uid);
      return { result: 'evicted' };
    } catch (err) {
      if (isKubeApiError(err, 429)) return { result: 'blocked', message: err.message };
      if (isNotFound(err) || isKubeApiError(err, 409)) return { result: 'gone', message: err instanceof Error ? err.message : describeError(err) };
      if (err instanceof KubeApiError && err.statusCode >= 400 && err.statusCode < 500) return { result: 'failed', message: err.message };
      throw err;
    }
  }

  /**
   * Writes status when it differs from the observed one; true if written. Right after a write
   * the cache may still hold the object as it was before it: the same status is then not
   * written twice. `record` is for the record of an eviction already made: it is written even
   * if leadership was lost meanwhile, since the next leader must know it happened.
   */
  async writeStatus(arcd: ArcDeployment, status: ArcDeploymentStatus, { record = false }: { record?: boolean } = {}): Promise<boolean> {
    const key = objectKey(arcd.metadata.namespace, arcd.metadata.name);
    const next = stableStringify(status);
    if (stableStringify(arcd.status ?? {}) === next) return false;
    const last = this.lastStatus.get(key);
    if (last !== undefined && last.basedOn === arcd.metadata.resourceVersion && last.status === next) return false;
    if (!record) this.guard();
    try {
      await this.o.client.apply(
        RESOURCES.arcDeployment,
        { apiVersion: API_VERSION, kind: KIND, metadata: { name: arcd.metadata.name, namespace: arcd.metadata.namespace }, status },
        { fieldManager: this.fieldManager, force: true, subresource: 'status' },
      );
    } catch (err) {
      if (isNotFound(err)) return false; // deleted meanwhile
      this.o.logger.warn({ err, arcdeployment: key }, 'status write failed');
      throw err;
    }
    this.lastStatus.set(key, { basedOn: arcd.metadata.resourceVersion, status: next });
    return true;
  }

  /**
   * The status this process last wrote for `arcd` while the cache still shows the version it was
   * computed from (the watch has not delivered the write yet), else undefined. A status computed
   * in that window must build on it: from the cache alone its conditions would look new, get a
   * new lastTransitionTime and be written again.
   */
  unseenStatus(arcd: ArcDeployment): ArcDeploymentStatus | undefined {
    const last = this.lastStatus.get(objectKey(arcd.metadata.namespace, arcd.metadata.name));
    return last !== undefined && last.basedOn === arcd.metadata.resourceVersion ? (JSON.parse(last.status) as ArcDeploymentStatus) : undefined;
  }

  /** Forgets what was written for an ArcDeployment that is gone. */
  forget(key: string): void {
    this.lastStatus.delete(key);
  }
}
