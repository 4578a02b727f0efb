// node:http and node:https, and a small route-table HTTP server on them, for the sidecar and
// the operator: each serves a few fixed GET routes, for which a framework would cost more
// memory than everything else they do (docs/benchmarks.md, ADR 0010).
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type * as HttpsModule from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * node:http without the ~13 MB it costs when imported the ES-module way.
 *
 * `import ... from 'node:http'` in an ES module builds the module's namespace, which reads every
 * export, and node:http's lazy `WebSocket`, `CloseEvent` and `MessageEvent` getters then load
 * undici: ~13 MB of RSS for a client neither process uses (measured on Node 24.21: 58 MB
 * against 45 MB for a bare script). `process.getBuiltinModule` hands back the CommonJS exports
 * untouched. The global `fetch` loads undici too, so the HTTP clients are node:http as well.
 */
export const http = process.getBuiltinModule('node:http');

/** node:https, loaded on first use (TLS costs ~5 MB, and a sidecar outside a pod never needs it). */
export function nodeHttps(): typeof HttpsModule {
  return process.getBuiltinModule('node:https');
}

export interface Answer {
  status: number;
  /** JSON unless `type` says otherwise. */
  body: unknown;
  type?: string;
}

/** Path -> handler, for GET (and HEAD, answered without a body). */
export type Routes = Record<string, () => Answer | Promise<Answer>>;

export interface RouteServer {
  readonly server: Server;
  /** Listens and resolves with the URL it answers on (`http://127.0.0.1:8081`). */
  listen(options: { port: number; host: string }): Promise<string>;
  /** Answers 503 to requests still arriving, then stops listening and waits for open requests. */
  close(): Promise<void>;
}

export interface RouteServerOptions {
  /** Names the process in the 503 sent while closing ("the sidecar is shutting down"). */
  name: string;
  logger: { error(obj: object, msg: string): void };
}

/**
 * Serves `routes` on node:http: anything else is a 404 naming the routes, a handler that throws
 * is logged and answered 500, and while closing every request gets a 503 and no keep-alive.
 */
export function routeServer(routes: Routes, options: RouteServerOptions): RouteServer {
  let closing = false;
  const known = Object.keys(routes);
  const hint = known.length === 1 ? known[0] : `${known.slice(0, -1).join(', ')} or ${known[known.length - 1]}`;

  const send = (req: IncomingMessage, res: ServerResponse, a: Answer): void => {
    const text = a.type === undefined ? JSON.stringify(a.body) : String(a.body);
    res.writeHead(a.status, {
      'content-type': a.type ?? 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      // While closing, no connection is kept open for a next request.
      ...(closing ? { connection: 'close' } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = req.method === 'GET' || req.method === 'HEAD' ? routes[path] : undefined;
    if (closing) return send(req, res, { status: 503, body: { error: `the ${options.name} is shutting down` } });
    if (route === undefined) return send(req, res, { status: 404, body: { error: `No route for ${req.method} ${path}; try ${hint}` } });
    send(req, res, await route());
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      options.logger.error({ err, url: req.url }, 'request failed');
      if (!res.headersSent) send(req, res, { status: 500, body: { error: err instanceof Error ? err.message : String(err) } });
      else res.destroy();
    });
  });

  return {
    server,
    listen: ({ port, host }) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const a = server.address() as AddressInfo;
          resolve(`http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
        });
      }),
    close: () =>
      new Promise((resolve, reject) => {
        closing = true;
        if (!server.listening) return resolve();
        server.close((err) => (err === undefined ? resolve() : reject(err)));
        server.closeIdleConnections();
      }),
  };
}
