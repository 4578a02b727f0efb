// A fault-injecting HTTPS reverse proxy for cluster-tier fault tests: it listens on loopback
// (port 0), forwards every request to the real kube-apiserver with the real credentials of a
// KubeConfig, records each request, and on requests a rule picks answers with a fault instead
// (a 429 with Retry-After, a 409 on the status write) or writes extra lines into open watch
// streams (garbage, objects the API server would never send). The operator under test gets
// `proxy.kubeConfig()`: the same CA, user and context, with the proxy as the server.
// It serves the API server's own certificate (from the cluster's certs folder), so the operator's
// TLS verification stays as it is against the real thing.
import { Buffer } from 'node:buffer';
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export interface ProxiedRequest {
  method: string;
  /** Path with query, as the client sent it. */
  path: string;
  /** Path without query. */
  pathname: string;
  watch: boolean;
  /** ms since the epoch when the request arrived. */
  at: number;
  /** The status of an injected fault, if this request got one instead of the API server. */
  injected?: number;
}

export interface Fault {
  status: number;
  headers?: Record<string, string>;
  /** Defaults to a metav1.Status for the status code. */
  body?: unknown;
}

/** Decides per request: a fault to answer with, or undefined to forward it. */
export type FaultRule = (req: { method: string; path: string; pathname: string; watch: boolean }) => Fault | undefined;

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'te', 'trailer']);

const REASONS: Record<number, string> = { 409: 'Conflict', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable' };

function statusBody(code: number, path: string): unknown {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `injected by the fault proxy: ${code} on ${path}`, reason: REASONS[code] ?? 'Unknown', code };
}

function forwardHeaders(headers: http.IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

interface OpenWatch {
  pathname: string;
  write(line: string): void;
  cut(): void;
}

export class FaultProxy {
  readonly requests: ProxiedRequest[] = [];
  /** One entry per watch event passed through (or injected): the watch's path and when. */
  readonly watchEvents: { pathname: string; at: number }[] = [];
  private rule: FaultRule | undefined;
  private readonly server: https.Server;
  private readonly agent: https.Agent;
  private readonly upstream: URL;
  private readonly upstreamHeaders: Record<string, string>;
  private readonly kc: KubeConfig;
  private readonly watches = new Set<OpenWatch>();
  private readonly upstreamRequests = new Set<http.ClientRequest>();

  private constructor(kc: KubeConfig, tls: { cert: string; key: string }, upstream: { options: https.RequestOptions }) {
    this.kc = kc;
    const server = kc.getCurrentCluster()?.server;
    if (server === undefined) throw new Error('the kubeconfig has no current cluster');
    this.upstream = new URL(server);
    const o = upstream.options;
    this.agent = new https.Agent({
      keepAlive: true,
      ...(o.ca === undefined ? {} : { ca: o.ca }),
      ...(o.cert === undefined ? {} : { cert: o.cert }),
      ...(o.key === undefined ? {} : { key: o.key }),
    });
    this.upstreamHeaders = { ...(o.headers as Record<string, string> | undefined) };
    this.server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => this.handle(req, res));
  }

  /** Starts a proxy in front of the API server `kc` points at, serving with `tls`. */
  static async start(kc: KubeConfig, tls: { cert: string; key: string }): Promise<FaultProxy> {
    const options: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(options);
    const proxy = new FaultProxy(kc, tls, { options });
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A KubeConfig like the upstream one whose server is this proxy. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    const name = this.kc.getCurrentContext();
    kc.loadFromOptions({
      clusters: this.kc.clusters.map((c) => ({ ...c, server: this.url })),
      users: this.kc.users,
      contexts: this.kc.contexts,
      currentContext: name,
    });
    return kc;
  }

  /** Sets (or with undefined, clears) the rule that picks faults. */
  setRule(rule: FaultRule | undefined): void {
    this.rule = rule;
  }

  /** Requests since `sinceMs` that match `filter`. */
  count(filter: (r: ProxiedRequest) => boolean, sinceMs = 0): number {
    return this.requests.filter((r) => r.at >= sinceMs && filter(r)).length;
  }

  /** Writes `line` (plus a newline) into every open watch whose path matches; returns how many. */
  injectWatchLine(match: (pathname: string) => boolean, line: string): number {
    let n = 0;
    for (const w of this.watches) {
      if (!match(w.pathname)) continue;
      w.write(line);
      n++;
    }
    return n;
  }

  /** Cuts every open watch stream (the connection drops mid-stream); returns how many. */
  cutWatches(): number {
    const open = [...this.watches];
    for (const w of open) w.cut();
    return open.length;
  }

  /** Open watch streams whose path matches. */
  openWatches(match: (pathname: string) => boolean): number {
    return [...this.watches].filter((w) => match(w.pathname)).length;
  }

  async close(): Promise<void> {
    for (const r of this.upstreamRequests) r.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.agent.destroy();
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = req.url ?? '/';
    const url = new URL(path, this.upstream);
    const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    const record: ProxiedRequest = { method: req.method ?? 'GET', path, pathname: url.pathname, watch, at: Date.now() };
    this.requests.push(record);
    const fault = this.rule?.({ method: record.method, path, pathname: url.pathname, watch });
    if (fault !== undefined) {
      record.injected = fault.status;
      req.resume();
      const body = JSON.stringify(fault.body ?? statusBody(fault.status, url.pathname));
      res.writeHead(fault.status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...fault.headers });
      res.end(body);
      return;
    }
    const up = https.request(
      { protocol: this.upstream.protocol, hostname: this.upstream.hostname, port: this.upstream.port, method: record.method, path, agent: this.agent, headers: { ...forwardHeaders(req.headers), ...this.upstreamHeaders } },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, forwardHeaders(upRes.headers));
        if (!watch || upRes.statusCode !== 200) {
          upRes.pipe(res);
          return;
        }
        this.stream(url.pathname, upRes, res);
      },
    );
    this.upstreamRequests.add(up);
    up.on('close', () => this.upstreamRequests.delete(up));
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  }

  /** Passes a watch through line by line, so that injected lines never split an event. */
  private stream(pathname: string, upRes: http.IncomingMessage, res: http.ServerResponse): void {
    let buffered = '';
    const open: OpenWatch = { pathname, write: (line) => res.write(`${line}\n`), cut: () => res.destroy() };
    const counted = (text: string): void => {
      for (const line of text.split('\n')) if (line.trim() !== '') this.watchEvents.push({ pathname, at: Date.now() });
    };
    this.watches.add(open);
    upRes.setEncoding('utf8');
    upRes.on('data', (chunk: string) => {
      buffered += chunk;
      const nl = buffered.lastIndexOf('\n');
      if (nl < 0) return;
      counted(buffered.slice(0, nl));
      res.write(buffered.slice(0, nl + 1));
      buffered = buffered.slice(nl + 1);
    });
    upRes.on('end', () => {
      this.watches.delete(open);
      res.end(buffered);
    });
    upRes.on('error', () => res.destroy());
    res.on('close', () => this.watches.delete(open));
  }
}
