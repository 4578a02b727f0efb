// One request to the Kubernetes API server over node:http(s), its answer read whole: the
// operator's client (operator/src/kube.ts) and the sidecar's pod-condition calls
// (sidecar/src/incluster.ts) both send theirs through it. The caller brings the URL and the
// request options (credentials, TLS material, agent); an error status is the caller's to turn
// into a KubeApiError (`apiError`), a request that gets no full answer rejects with a
// KubeTransportError.
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestOptions } from 'node:https';
import { KubeApiError, KubeTransportError } from './errors.ts';
import { http, nodeHttps } from './node-http.ts';

export interface ApiRequest {
  url: URL;
  /** Method, headers, credentials, TLS material, agent. */
  options: RequestOptions;
  body?: string | undefined;
  /** The request fails when the socket stays silent this long. */
  timeoutMs: number;
  /** Names the request in a transport error's message (`GET /api/v1/pods`). */
  label: string;
}

export interface ApiResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export function apiServerRequest(r: ApiRequest): Promise<ApiResponse> {
  const transport = r.url.protocol === 'https:' ? nodeHttps() : http;
  return new Promise<ApiResponse>((resolve, reject) => {
    // Node's https.Agent keeps the request that opened a keep-alive socket reachable for as
    // long as the socket lives (its TLS session listener closes over the request's callback).
    // Once settled, these callbacks must hold nothing: neither the promise (whose result is
    // the body, megabytes for a page of a list) nor the chunks it was read from.
    let pending: { resolve: typeof resolve; reject: typeof reject } | undefined = { resolve, reject };
    let chunks: Buffer[] = [];
    const fail = (err: Error): void => {
      const p = pending;
      pending = undefined;
      chunks = [];
      p?.reject(new KubeTransportError(`${r.label}: ${err.message}`, { cause: err }));
    };
    const req = transport.request(r.url, r.options, (res) => {
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const p = pending;
        pending = undefined;
        const text = Buffer.concat(chunks).toString('utf8');
        chunks = [];
        p?.resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text });
      });
      res.on('error', fail);
    });
    req.setTimeout(r.timeoutMs, () => req.destroy(new Error(`no answer within ${r.timeoutMs} ms`)));
    req.on('error', fail);
    req.end(r.body);
  });
}

/** An error answer (a Status object, or any text) as a KubeApiError. */
export function apiError(method: string, path: string, status: number, headers: IncomingHttpHeaders, body: string): KubeApiError {
  let reason = http.STATUS_CODES[status] ?? 'Unknown';
  let message = body.trim().slice(0, 2000) || `${method} ${path} failed with HTTP ${status}`;
  try {
    const parsed = JSON.parse(body) as { kind?: string; reason?: string; message?: string };
    if (parsed.kind === 'Status') {
      if (parsed.reason) reason = parsed.reason;
      if (parsed.message) message = parsed.message;
    }
  } catch {
    // not JSON: keep the text
  }
  const retryAfter = Number(headers['retry-after']);
  return new KubeApiError(status, reason, message, { method, path }, Number.isFinite(retryAfter) ? { retryAfterSeconds: retryAfter } : undefined);
}
