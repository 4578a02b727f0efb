// The operator's API client (kube.ts) against a small API server on loopback: the requests it
// sends (paths, query, content types, bodies), how it reads answers and Status errors, and how a
// watch is streamed, ends and fails.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeApiError, KubeTransportError } from '../../operator/src/errors.ts';
import { HttpKubeClient, RESOURCES } from '../../operator/src/kube.ts';
import type { WatchEvent } from '../../operator/src/kube.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

const servers: Server[] = [];
const clients: HttpKubeClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** An API server on loopback answering with `handle`; every request it got is in `seen`. */
async function apiServer(handle: (req: Seen, res: ServerResponse) => void): Promise<{ client: HttpKubeClient; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      seen.push(r);
      handle(r, res);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const client = new HttpKubeClient(
    { server: () => `http://127.0.0.1:${port}`, authorize: (o) => Promise.resolve(void (o.headers = { authorization: 'Bearer test-token' })), proxied: () => false },
    { requestTimeoutMs: 2000, userAgent: 'arc-operator-test' },
  );
  clients.push(client);
  return { client, seen };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

const status = (code: number, reason: string, message: string) => ({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });

describe('HttpKubeClient requests', () => {
  it('gets an object with the credentials and user agent, and answers undefined for a 404', async () => {
    const { client, seen } = await apiServer((r, res) => (r.url.endsWith('/demo') ? json(res, 200, { metadata: { name: 'demo' } }) : json(res, 404, status(404, 'NotFound', 'not found'))));
    expect(await client.get(RESOURCES.deployment, 'team-a', 'demo')).toEqual({ metadata: { name: 'demo' } });
    expect(await client.get(RESOURCES.deployment, 'team-a', 'gone')).toBeUndefined();
    expect(seen[0]).toMatchObject({ method: 'GET', url: '/apis/apps/v1/namespaces/team-a/deployments/demo' });
    expect(seen[0]?.headers).toMatchObject({ authorization: 'Bearer test-token', 'user-agent': 'arc-operator-test', accept: 'application/json' });
  });

  it('turns a Status answer into a KubeApiError with its reason, message and Retry-After', async () => {
    const { client } = await apiServer((_r, res) => json(res, 429, status(429, 'TooManyRequests', 'slow down'), { 'retry-after': '7' }));
    const err = await client.create(RESOURCES.event, 'team-a', { metadata: { name: 'e' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect(err).toMatchObject({ statusCode: 429, reason: 'TooManyRequests', message: 'slow down', retryAfterSeconds: 7, method: 'POST', path: '/api/v1/namespaces/team-a/events' });
  });

  it('keeps the text of an answer that is not a Status', async () => {
    const { client } = await apiServer((_r, res) => {
      res.writeHead(502);
      res.end('bad gateway from a proxy');
    });
    await expect(client.get(RESOURCES.pod, 'team-a', 'p')).rejects.toMatchObject({ statusCode: 502, reason: 'Bad Gateway', message: 'bad gateway from a proxy' });
  });

  it('lists a page with its selector, limit and continue token, and gives the items their apiVersion and kind', async () => {
    const { client, seen } = await apiServer((_r, res) => json(res, 200, { metadata: { resourceVersion: '42', continue: 'next-page' }, items: [{ metadata: { name: 'p1' } }] }));
    const page = await client.list(RESOURCES.pod, { namespace: 'team-a', labelSelector: 'app=arc', limit: 1, continue: 'this-page' });
    expect(page).toEqual({ items: [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p1' } }], resourceVersion: '42', continue: 'next-page' });
    expect(seen[0]?.url).toBe('/api/v1/namespaces/team-a/pods?labelSelector=app%3Darc&limit=1&continue=this-page');
  });

  it('server-side applies with the field manager, force and the apply content type', async () => {
    const { client, seen } = await apiServer((r, res) => json(res, 200, JSON.parse(r.body) as object));
    await client.apply(RESOURCES.arcDeployment, { metadata: { name: 'demo', namespace: 'team-a' }, status: { replicas: 2 } }, { fieldManager: 'arc-operator', force: true, subresource: 'status' });
    expect(seen[0]).toMatchObject({ method: 'PATCH', url: '/apis/arcops.dev/v1alpha1/namespaces/team-a/arcdeployments/demo/status?fieldManager=arc-operator&force=true' });
    expect(seen[0]?.headers['content-type']).toBe('application/apply-patch+yaml');
    expect(JSON.parse(seen[0]?.body ?? '')).toEqual({ metadata: { name: 'demo', namespace: 'team-a' }, status: { replicas: 2 } });
  });

  it('evicts through the Eviction API with the uid as precondition, never a delete', async () => {
    const { client, seen } = await apiServer((_r, res) => json(res, 201, { kind: 'Status', status: 'Success' }));
    await client.evict('team-a', 'demo-a', 'uid-a');
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/api/v1/namespaces/team-a/pods/demo-a/eviction' });
    expect(JSON.parse(seen[0]?.body ?? '')).toEqual({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'demo-a', namespace: 'team-a' }, deleteOptions: { preconditions: { uid: 'uid-a' } } });
  });

  it('deletes with preconditions', async () => {
    const { client, seen } = await apiServer((_r, res) => json(res, 200, { kind: 'Status', status: 'Success' }));
    await client.delete(RESOURCES.role, 'team-a', 'old', { uid: 'u1', resourceVersion: '9' });
    expect(seen[0]).toMatchObject({ method: 'DELETE', url: '/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/roles/old' });
    expect(JSON.parse(seen[0]?.body ?? '')).toMatchObject({ kind: 'DeleteOptions', preconditions: { uid: 'u1', resourceVersion: '9' } });
  });

  it('fails with a KubeTransportError when nothing answers', async () => {
    const { client } = await apiServer(() => undefined);
    await new Promise((r) => servers[0]?.close(r));
    servers.length = 0;
    await expect(client.get(RESOURCES.pod, 'team-a', 'p')).rejects.toBeInstanceOf(KubeTransportError);
  });
});

describe('HttpKubeClient.watch', () => {
  it('hands over each event of the stream, however it is cut, and resolves when the server ends it', async () => {
    const { client, seen } = await apiServer((_r, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const text = [
        JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '5' } } }),
        JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '6' } } }),
        JSON.stringify({ type: 'DELETED', object: { metadata: { name: 'a', resourceVersion: '7' } } }),
      ].join('\n');
      res.write(text.slice(0, 30));
      setTimeout(() => res.end(`${text.slice(30)}\n`), 20);
    });
    const events: WatchEvent[] = [];
    await client.watch(RESOURCES.pod, { namespace: 'team-a', resourceVersion: '4', timeoutSeconds: 30, labelSelector: 'app=arc' }, (e) => events.push(e));
    expect(events.map((e) => `${e.type} ${e.object.metadata?.resourceVersion}`)).toEqual(['ADDED 5', 'BOOKMARK 6', 'DELETED 7']);
    expect(seen[0]?.url).toBe('/api/v1/namespaces/team-a/pods?watch=true&allowWatchBookmarks=true&timeoutSeconds=30&resourceVersion=4&labelSelector=app%3Darc');
  });

  it('fails with the Status of an ERROR event (410: the resourceVersion is too old)', async () => {
    const { client } = await apiServer((_r, res) => {
      res.writeHead(200);
      res.write(`${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', 'too old resource version: 4 (40)') })}\n`);
    });
    await expect(client.watch(RESOURCES.pod, { resourceVersion: '4', timeoutSeconds: 30 }, () => undefined)).rejects.toMatchObject({ statusCode: 410, reason: 'Expired' });
  });

  it('stops when its signal aborts', async () => {
    const { client } = await apiServer((_r, res) => res.writeHead(200).flushHeaders());
    const abort = new AbortController();
    const watching = client.watch(RESOURCES.pod, { resourceVersion: '1', timeoutSeconds: 30, signal: abort.signal }, () => undefined);
    setTimeout(() => abort.abort(new Error('stopped by the test')), 50);
    await expect(watching).rejects.toThrow('stopped by the test');
  });

  it('fails when a handler throws, rather than losing the event', async () => {
    const { client } = await apiServer((_r, res) => {
      res.writeHead(200);
      res.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a' } } })}\n`);
    });
    await expect(
      client.watch(RESOURCES.pod, { resourceVersion: '1', timeoutSeconds: 30 }, () => {
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
  });
});
