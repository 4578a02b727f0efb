// The operator's narrow view of the Kubernetes API, in raw JSON. One interface (KubeClient) that
// the controller, informers, leader election and events use, and one implementation over
// node:https (requests through @arcops/common's apiServerRequest; watches streamed here). Its
// credentials come from a KubeAccess (kube-access.ts). Raw JSON keeps list and watch objects in one shape
// (client-node's typed lists turn timestamps into Date objects while its watch events do not)
// and makes managedFields comparisons exact.
import { Buffer } from 'node:buffer';
import type { Agent } from 'node:http';
import type { RequestOptions } from 'node:https';
import { KubeApiError, KubeTransportError, apiError, apiServerRequest, http, nodeHttps } from '@arcops/common';
import type { ApiResponse } from '@arcops/common';
import type { KubeConfig } from '@kubernetes/client-node';
import { describeError } from './errors.ts';
import { isKubeConfig, kubeConfigAccess } from './kube-access.ts';
import type { KubeAccess } from './kube-access.ts';
import type { KubeObject } from './types.ts';

const https = nodeHttps();

export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

function resource(group: string, version: string, plural: string, kind: string, namespaced = true): ResourceType {
  return { group, version, plural, kind, namespaced };
}

export const RESOURCES = {
  arcDeployment: resource('arcops.dev', 'v1alpha1', 'arcdeployments', 'ArcDeployment'),
  deployment: resource('apps', 'v1', 'deployments', 'Deployment'),
  service: resource('', 'v1', 'services', 'Service'),
  serviceAccount: resource('', 'v1', 'serviceaccounts', 'ServiceAccount'),
  role: resource('rbac.authorization.k8s.io', 'v1', 'roles', 'Role'),
  roleBinding: resource('rbac.authorization.k8s.io', 'v1', 'rolebindings', 'RoleBinding'),
  clusterRole: resource('rbac.authorization.k8s.io', 'v1', 'clusterroles', 'ClusterRole', false),
  podDisruptionBudget: resource('policy', 'v1', 'poddisruptionbudgets', 'PodDisruptionBudget'),
  persistentVolumeClaim: resource('', 'v1', 'persistentvolumeclaims', 'PersistentVolumeClaim'),
  pod: resource('', 'v1', 'pods', 'Pod'),
  secret: resource('', 'v1', 'secrets', 'Secret'),
  event: resource('', 'v1', 'events', 'Event'),
  lease: resource('coordination.k8s.io', 'v1', 'leases', 'Lease'),
} as const;

/** The resource type of an object by its kind (for the kinds the operator writes). */
export function resourceForKind(kind: string): ResourceType {
  const found = Object.values(RESOURCES).find((r) => r.kind === kind);
  if (!found) throw new Error(`no resource type known for kind ${kind}`);
  return found;
}

export function resourcePath(res: ResourceType, namespace?: string, name?: string, subresource?: string): string {
  let path = res.group === '' ? `/api/${res.version}` : `/apis/${res.group}/${res.version}`;
  if (res.namespaced && namespace !== undefined && namespace !== '') path += `/namespaces/${encodeURIComponent(namespace)}`;
  path += `/${res.plural}`;
  if (name !== undefined) path += `/${encodeURIComponent(name)}`;
  if (subresource !== undefined) path += `/${subresource}`;
  return path;
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  signal?: AbortSignal;
}

export interface ListPageOptions extends ListOptions {
  /** At most this many items (the API server may return fewer and a continue token). */
  limit?: number;
  /** The continue token of the previous page. */
  continue?: string;
}

export interface ListPage<T extends KubeObject = KubeObject> {
  items: T[];
  resourceVersion: string;
  /** Set when more pages follow: pass it as `continue` to get the next one. */
  continue?: string;
}

export interface WatchOptions extends ListOptions {
  resourceVersion: string;
  /** The API server ends the watch after this many seconds. */
  timeoutSeconds: number;
}

export interface ApplyOptions {
  fieldManager: string;
  force: boolean;
  subresource?: 'status';
}

export type PatchType = 'merge' | 'json' | 'strategic';

export interface KubeClient {
  /** The object, or undefined when it does not exist (404). */
  get<T extends KubeObject = KubeObject>(res: ResourceType, namespace: string, name: string): Promise<T | undefined>;
  list<T extends KubeObject = KubeObject>(res: ResourceType, options?: ListPageOptions): Promise<ListPage<T>>;
  /**
   * Streams watch events to `onEvent` until the server ends the watch (resolves), the stream
   * fails or the server sends an ERROR event (rejects; 410 = resourceVersion expired), or
   * `signal` aborts (rejects with the signal's reason).
   */
  watch(res: ResourceType, options: WatchOptions, onEvent: (event: WatchEvent) => void): Promise<void>;
  create<T extends KubeObject = KubeObject>(res: ResourceType, namespace: string, body: KubeObject): Promise<T>;
  /** PUT: fails with 409 when body.metadata.resourceVersion is not the current one. */
  replace<T extends KubeObject = KubeObject>(res: ResourceType, namespace: string, name: string, body: KubeObject): Promise<T>;
  /** PATCH the object, or its status subresource. */
  patch<T extends KubeObject = KubeObject>(res: ResourceType, namespace: string, name: string, body: unknown, type: PatchType, subresource?: 'status'): Promise<T>;
  /**
   * DELETE with preconditions: fails with 409 when the object is no longer that very one (uid)
   * or has changed since it was read (resourceVersion); 404 when it is gone.
   */
  delete(res: ResourceType, namespace: string, name: string, preconditions: { uid?: string; resourceVersion?: string }): Promise<void>;
  /** Server-side apply of `body` (which names itself). */
  apply<T extends KubeObject = KubeObject>(res: ResourceType, body: KubeObject, options: ApplyOptions): Promise<T>;
  /**
   * Evicts a pod through the Eviction API (policy/v1, pods/eviction), so that its
   * PodDisruptionBudget is honoured: 429 when the budget does not allow it. With `uid` only that
   * very pod is evicted (409 when the name now belongs to another).
   */
  evict(namespace: string, name: string, uid?: string): Promise<void>;
}

/** The policy/v1 Eviction body for a pod. */
export function evictionBody(namespace: string, name: string, uid?: string): KubeObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'Eviction',
    metadata: { name, namespace },
    ...(uid === undefined ? {} : { deleteOptions: { preconditions: { uid } } }),
  };
}

const CONTENT_TYPES: Record<PatchType | 'apply', string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
};

export interface HttpKubeClientOptions {
  /** Timeout of a request that is not a watch. */
  requestTimeoutMs?: number;
  userAgent?: string;
}

/** KubeClient over node:https, with a KubeAccess's credentials (or a client-node KubeConfig's). */
export class HttpKubeClient implements KubeClient {
  private readonly access: KubeAccess;
  private readonly requestTimeoutMs: number;
  private readonly userAgent: string;
  private agent: Agent | undefined;

  constructor(access: KubeAccess | KubeConfig, options: HttpKubeClientOptions = {}) {
    this.access = isKubeConfig(access) ? kubeConfigAccess(access) : access;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.userAgent = options.userAgent ?? 'arc-operator';
  }

  /** Base URL of the API server. */
  get server(): string {
    return this.access.server();
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }

  private async requestOptions(method: string, path: string, headers: Record<string, string>): Promise<{ url: URL; options: RequestOptions }> {
    const url = new URL(this.access.server().replace(/\/+$/, '') + path);
    const options: RequestOptions = { method, headers: {} };
    // Fills in the CA, client certificate, bearer token (in-cluster files, kubeconfig, exec plugin).
    await this.access.authorize(options);
    options.headers = { ...(options.headers as Record<string, string>), 'user-agent': this.userAgent, accept: 'application/json', ...headers };
    if (!this.access.proxied()) {
      // One keep-alive agent per client, with the same TLS material (client-node's is not keep-alive).
      this.agent ??=
        url.protocol === 'https:'
          ? new https.Agent({
              keepAlive: true,
              ...(options.ca === undefined ? {} : { ca: options.ca }),
              ...(options.cert === undefined ? {} : { cert: options.cert }),
              ...(options.key === undefined ? {} : { key: options.key }),
              ...(options.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: options.rejectUnauthorized }),
              ...(options.servername === undefined ? {} : { servername: options.servername }),
            })
          : new http.Agent({ keepAlive: true });
      options.agent = this.agent;
    }
    return { url, options };
  }

  private async send(method: string, path: string, body?: string, contentType?: string): Promise<ApiResponse> {
    const headers: Record<string, string> = {};
    if (body !== undefined) {
      headers['content-type'] = contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const { url, options } = await this.requestOptions(method, path, headers);
    return apiServerRequest({ url, options, body, timeoutMs: this.requestTimeoutMs, label: `${method} ${path}` });
  }

  private async json<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const res = await this.send(method, path, body === undefined ? undefined : JSON.stringify(body), contentType);
    if (res.status < 200 || res.status > 299) throw apiError(method, path, res.status, res.headers, res.body);
    return JSON.parse(res.body) as T;
  }

  async get<T extends KubeObject = KubeObject>(res: ResourceType, namespace: string, name: string): Promise<T | undefined> {
    const path = resourcePath(res, namespace, name);
    const r = await this.send('GET', path);
    if (r.status === 404) return undefined;
    if (r.status < 200 || r.status > 299) throw apiError('GET', path, r.status, r.headers, r.body);
    return JSON.parse(r.body) as T;
  }

  async list<T extends KubeObject = KubeObject>(res: ResourceType, options: ListPageOptions = {}): Promise<ListPage<T>> {
    const query = new URLSearchParams();
    if (options.labelSelector) query.set('labelSelector', options.labelSelector);
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    if (options.continue) query.set('continue', options.continue);
    const path = `${resourcePath(res, options.namespace)}${query.size > 0 ? `?${query.toString()}` : ''}`;
    const list = await this.json<{ items?: T[]; metadata?: { resourceVersion?: string; continue?: string } }>('GET', path);
    // List items carry no apiVersion/kind; give them theirs so they look like watched objects.
    const apiVersion = res.group === '' ? res.version : `${res.group}/${res.version}`;
    const items = (list.items ?? []).map((i) => ({ ...i, apiVersion, kind: res.kind }));
    const next = list.metadata?.continue;
    return { items, resourceVersion: list.metadata?.resourceVersion ?? '', ...(next ? { continue: next } : {}) };
  }

  async watch(res: ResourceType, options: WatchOptions, onEvent: (event: WatchEvent) => void): Promise<void> {
    const query = new URLSearchParams({
      watch: 'true',
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(options.timeoutSeconds),
    });
    if (options.resourceVersion) query.set('resourceVersion', options.resourceVersion);
    if (options.labelSelector) query.set('labelSelector', options.labelSelector);
    const path = `${resourcePath(res, options.namespace)}?${query.toString()}`;
    const { url, options: reqOptions } = await this.requestOptions('GET', path, {});
    const transport = url.protocol === 'https:' ? https : http;
    const signal = options.signal;
    signal?.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        if (err === undefined) resolve();
        else reject(err instanceof Error ? err : new Error(describeError(err)));
      };
      const req = transport.request(url, reqOptions, (response) => {
        const status = response.statusCode ?? 0;
        if (status !== 200) {
          const chunks: Buffer[] = [];
          response.on('data', (c: Buffer) => chunks.push(c));
          response.on('end', () => finish(apiError('GET', path, status, response.headers, Buffer.concat(chunks).toString('utf8'))));
          response.on('error', (err) => finish(new KubeTransportError(`watch ${path}: ${err.message}`, { cause: err })));
          return;
        }
        response.setEncoding('utf8');
        let buffered = '';
        const line = (text: string): void => {
          if (text.trim() === '') return;
          let event: WatchEvent;
          try {
            event = JSON.parse(text) as WatchEvent;
          } catch (err) {
            finish(new KubeTransportError(`watch ${path}: unreadable event`, { cause: err }));
            req.destroy();
            return;
          }
          if (event.type === 'ERROR') {
            const st = event.object as { code?: number; reason?: string; message?: string };
            finish(new KubeApiError(st.code ?? 500, st.reason ?? 'Unknown', st.message ?? 'watch error', { method: 'WATCH', path }));
            req.destroy();
            return;
          }
          try {
            onEvent(event);
          } catch (err) {
            finish(err);
            req.destroy();
          }
        };
        response.on('data', (chunk: string) => {
          buffered += chunk;
          let nl = buffered.indexOf('\n');
          while (nl >= 0 && !settled) {
            line(buffered.slice(0, nl));
            buffered = buffered.slice(nl + 1);
            nl = buffered.indexOf('\n');
          }
        });
        response.on('end', () => {
          line(buffered);
          finish();
        });
        response.on('aborted', () => finish(new KubeTransportError(`watch ${path}: connection lost`)));
        response.on('error', (err) => finish(new KubeTransportError(`watch ${path}: ${err.message}`, { cause: err })));
        response.on('close', () => finish(new KubeTransportError(`watch ${path}: connection closed`)));
      });
      const onAbort = (): void => {
        finish(signal?.reason ?? new Error('aborted'));
        req.destroy();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err) => finish(new KubeTransportError(`watch ${path}: ${err.message}`, { cause: err })));
      req.end();
    });
  }

  create<T extends KubeObject = KubeObject>(res: ResourceType, namespace: string, body: KubeObject): Promise<T> {
    return this.json<T>('POST', resourcePath(res, namespace), body);
  }

  replace<T extends KubeObject = KubeObject>(res: ResourceType, namespace: string, name: string, body: KubeObject): Promise<T> {
    return this.json<T>('PUT', resourcePath(res, namespace, name), body);
  }

  patch<T extends KubeObject = KubeObject>(res: ResourceType, namespace: string, name: string, body: unknown, type: PatchType, subresource?: 'status'): Promise<T> {
    return this.json<T>('PATCH', resourcePath(res, namespace, name, subresource), body, CONTENT_TYPES[type]);
  }

  async delete(res: ResourceType, namespace: string, name: string, preconditions: { uid?: string; resourceVersion?: string }): Promise<void> {
    await this.json<KubeObject>('DELETE', resourcePath(res, namespace, name), { apiVersion: 'v1', kind: 'DeleteOptions', preconditions });
  }

  async evict(namespace: string, name: string, uid?: string): Promise<void> {
    await this.json<KubeObject>('POST', resourcePath(RESOURCES.pod, namespace, name, 'eviction'), evictionBody(namespace, name, uid));
  }

  apply<T extends KubeObject = KubeObject>(res: ResourceType, body: KubeObject, options: ApplyOptions): Promise<T> {
    const name = body.metadata?.name;
    if (!name) throw new Error('server-side apply needs metadata.name');
    const query = new URLSearchParams({ fieldManager: options.fieldManager, force: String(options.force) });
    const path = `${resourcePath(res, body.metadata?.namespace, name, options.subresource)}?${query.toString()}`;
    return this.json<T>('PATCH', path, body, CONTENT_TYPES.apply);
  }
}
