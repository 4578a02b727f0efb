/**
 * node:http for the sidecar, without the 13 MB it costs when imported the ES-module way.
 *
 * `import { request } from 'node:http'` in an ES module builds the module's namespace, which
 * reads every export, and node:http's lazy `WebSocket`, `CloseEvent` and `MessageEvent` getters
 * then load undici: ~13 MB of RSS for a client the sidecar never uses (measured on Node 24.21:
 * 58 MB against 45 MB). `process.getBuiltinModule` hands back the CommonJS exports untouched.
 * The global `fetch` loads undici too, so the sidecar's HTTP client is node:http as well.
 */
export const http = process.getBuiltinModule('node:http');
