// An in-memory stand-in for the Kubernetes API behind the operator's KubeClient interface, for
// pure tests of leader election, informers and events. It keeps resourceVersions and refuses
// stale updates (409) like the API server; watches are scripted by the test.
import { KubeApiError, KubeTransportError } from '../../operator/src/errors.ts';
import { RESOURCES } from '../../operator/src/kube.ts';
import type { ApplyOptions, KubeClient, ListPage, ListPageOptions, PatchType, ResourceType, WatchEvent, WatchOptions } from '../../operator/src/kube.ts';
import type { KubeObject } from '../../operator/src/types.ts';

export interface WatchCall {
  res: ResourceType;
  options: WatchOptions;
  onEvent: (event: WatchEvent) => void;
}

function key(res: ResourceType, namespace: string | undefined, name: string): string {
  return `${res.plural}/${namespace ?? ''}/${name}`;
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export class FakeKube implements KubeClient {
  readonly objects = new Map<string, KubeObject>();
  readonly calls: { method: string; resource: string; name?: string }[] = [];
  readonly watches: WatchCall[] = [];
  private rv = 0;
  /** When set, every request fails as if the API server were unreachable. */
  down = false;
  /** Decides how each watch behaves (default: stays open, silent, until aborted). */
  watchScript: (call: WatchCall) => Promise<void> = (call) => waitForAbort(call.options.signal);
  /** Decides list results (default: the stored objects of that resource). */
  listScript: ((res: ResourceType) => KubeObject[]) | undefined;

  private check(method: string, res: ResourceType, name?: string): void {
    this.calls.push({ method, resource: res.plural, ...(name === undefined ? {} : { name }) });
    if (this.down) throw new KubeTransportError(`${method} ${res.plural}: connect ECONNREFUSED 127.0.0.1:26443`);
  }

  private stamp(obj: KubeObject): KubeObject {
    this.rv++;
    return { ...obj, metadata: { ...obj.metadata, resourceVersion: String(this.rv) } };
  }

  put(res: ResourceType, obj: KubeObject): KubeObject {
    const stored = this.stamp({ ...obj, apiVersion: obj.apiVersion ?? (res.group ? `${res.group}/${res.version}` : res.version), kind: res.kind });
    this.objects.set(key(res, obj.metadata?.namespace, obj.metadata?.name ?? ''), stored);
    return stored;
  }

  read(res: ResourceType, namespace: string, name: string): KubeObject | undefined {
    return this.objects.get(key(res, namespace, name));
  }

  get currentResourceVersion(): string {
    return String(this.rv);
  }

  /** Makes GETs of one resource fail as if the API server were unreachable. */
  failGets: ResourceType | undefined;

  async get<T extends KubeObject = KubeObject>(res: ResourceType, namespace: string, name: string): Promise<T | undefined> {
    this.check('get', res, name);
    if (this.failGets?.plural === res.plural) throw new KubeTransportError(`get ${res.plural}: connect ECONNREFUSED 127.0.0.1:26443`);
    const o = this.objects.get(key(res, namespace, name));
    return o === undefined ? undefined : (structuredClone(o) as T);
  }

  async list<T extends KubeObject = KubeObject>(res: ResourceType, options: ListPageOptions = {}): Promise<ListPage<T>> {
    this.check('list', res);
    const all =
      this.listScript?.(res) ??
      [...this.objects.entries()].filter(([k]) => k.startsWith(`${res.plural}/${options.namespace ?? ''}`)).map(([, o]) => o);
    // Pages as the API server cuts them: `continue` is the offset of the next item here.
    const from = options.continue === undefined ? 0 : Number(options.continue);
    const to = options.limit === undefined ? all.length : Math.min(all.length, from + options.limit);
    const items = all.slice(from, to);
    return { items: structuredClone(items) as T[], resourceVersion: String(this.rv), ...(to < all.length ? { continue: String(to) } : {}) };
  }

  async watch(res: ResourceType, options: WatchOptions, onEvent: (event: WatchEvent) => void): Promise<void> {
    this.check('watch', res);
    const call = { res, options, onEvent };
    this.watches.push(call);
    return this.watchScript(call);
  }

  async create<T extends KubeObject = KubeObject>(res: ResourceType, namespace: string, body: KubeObject): Promise<T> {
    this.check('create', res, body.metadata?.name);
    const k = key(res, namespace, body.metadata?.name ?? '');
    if (this.objects.has(k)) throw new KubeApiError(409, 'AlreadyExists', `${res.plural} "${body.metadata?.name}" already exists`, { method: 'POST', path: k });
    return structuredClone(this.put(res, { ...body, metadata: { ...body.metadata, namespace } })) as T;
  }

  async replace<T extends KubeObject = KubeObject>(res: ResourceType, namespace: string, name: string, body: KubeObject): Promise<T> {
    this.check('replace', res, name);
    const current = this.objects.get(key(res, namespace, name));
    if (current === undefined) throw new KubeApiError(404, 'NotFound', `${res.plural} "${name}" not found`, { method: 'PUT', path: name });
    if (body.metadata?.resourceVersion !== current.metadata?.resourceVersion) {
      throw new KubeApiError(409, 'Conflict', `Operation cannot be fulfilled on ${res.plural} "${name}": the object has been modified`, { method: 'PUT', path: name });
    }
    return structuredClone(this.put(res, body)) as T;
  }

  async patch<T extends KubeObject = KubeObject>(res: ResourceType, namespace: string, name: string, body: unknown, _type: PatchType): Promise<T> {
    this.check('patch', res, name);
    const current = this.objects.get(key(res, namespace, name));
    if (current === undefined) throw new KubeApiError(404, 'NotFound', `${res.plural} "${name}" not found`, { method: 'PATCH', path: name });
    return structuredClone(this.put(res, mergePatch(current, body) as KubeObject)) as T;
  }

  /** Decides how an eviction ends (default: the pod gets a deletionTimestamp). */
  evictScript: ((namespace: string, name: string) => void) | undefined;

  async delete(res: ResourceType, namespace: string, name: string, preconditions: { uid?: string; resourceVersion?: string }): Promise<void> {
    this.check('delete', res, name);
    const k = key(res, namespace, name);
    const current = this.objects.get(k);
    if (current === undefined) throw new KubeApiError(404, 'NotFound', `${res.plural} "${name}" not found`, { method: 'DELETE', path: name });
    const stale =
      (preconditions.uid !== undefined && current.metadata?.uid !== preconditions.uid) ||
      (preconditions.resourceVersion !== undefined && current.metadata?.resourceVersion !== preconditions.resourceVersion);
    if (stale) throw new KubeApiError(409, 'Conflict', 'Precondition failed', { method: 'DELETE', path: name });
    this.objects.delete(k);
  }

  async evict(namespace: string, name: string, uid?: string): Promise<void> {
    const res = RESOURCES.pod;
    this.check('evict', res, name);
    this.evictScript?.(namespace, name);
    const current = this.objects.get(key(res, namespace, name));
    if (current === undefined) throw new KubeApiError(404, 'NotFound', `pods "${name}" not found`, { method: 'POST', path: name });
    if (uid !== undefined && current.metadata?.uid !== uid) throw new KubeApiError(409, 'Conflict', 'Precondition failed: UID in precondition', { method: 'POST', path: name });
    this.put(res, { ...current, metadata: { ...current.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } });
  }

  async apply<T extends KubeObject = KubeObject>(res: ResourceType, body: KubeObject, options: ApplyOptions): Promise<T> {
    this.check(options.subresource === 'status' ? 'apply-status' : 'apply', res, body.metadata?.name);
    const k = key(res, body.metadata?.namespace, body.metadata?.name ?? '');
    const current = this.objects.get(k);
    // As the API server does: a resourceVersion in the applied object is a precondition on an
    // existing object (force or not) and ignored when the apply creates.
    const expected = body.metadata?.resourceVersion;
    if (current !== undefined && expected !== undefined && expected !== current.metadata?.resourceVersion) {
      throw new KubeApiError(409, 'Conflict', `Operation cannot be fulfilled on ${res.plural} "${body.metadata?.name ?? ''}": the object has been modified`, { method: 'PATCH', path: body.metadata?.name ?? '' });
    }
    const merged = current === undefined ? body : (mergePatch(current, body) as KubeObject);
    return structuredClone(this.put(res, merged)) as T;
  }
}

/** Resolves never; rejects with the signal's reason when it aborts. */
export function waitForAbort(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((_resolve, reject) => {
    if (signal === undefined) return;
    if (signal.aborted) {
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      return;
    }
    signal.addEventListener('abort', () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted')), { once: true });
  });
}
