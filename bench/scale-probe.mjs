// Preloaded into the operator child by bench/scale.ts (`node --import ./bench/scale-probe.mjs`):
// counts every HTTP request the process sends (the operator talks to the API server through
// node:https, which publishes `http.client.request.start`) by verb and resource, and writes the
// counts as JSON to ARC_SCALE_PROBE_FILE twice a second. The operator's own metrics count
// applies and status writes but not reads, so this is how the bench gets requests per reconcile
// without touching the operator. Never loaded by the operator in production. Plain JavaScript:
// a TypeScript file would load Node's type stripper into the operator, which the image never
// does (it runs the compiled dist/), and its memory would count as the operator's.
import { subscribe } from 'node:diagnostics_channel';
import { renameSync, writeFileSync } from 'node:fs';
import { setInterval } from 'node:timers';

const file = process.env['ARC_SCALE_PROBE_FILE'];
/** @type {Record<string, number>} */
const counts = {};

/**
 * `GET pods`, `PATCH arcdeployments/status`, `WATCH deployments`, ...
 * @param {import('node:http').ClientRequest} req
 * @returns {string}
 */
function key(req) {
  const [path = '', query = ''] = req.path.split('?');
  const parts = path.split('/').filter((p) => p !== '');
  const ns = parts.indexOf('namespaces');
  // /api/v1/namespaces/NS/pods/NAME/status or /apis/G/V/namespaces/NS/RES[/NAME[/SUB]]
  const rest = ns >= 0 ? parts.slice(ns + 2) : parts.slice(parts[0] === 'api' ? 2 : 3);
  const resource = rest.length >= 3 ? `${rest[0]}/${rest[2]}` : (rest[0] ?? '?');
  const verb = req.method === 'GET' && /(^|&)watch=(true|1)/.test(query) ? 'WATCH' : req.method;
  return `${verb} ${resource}`;
}

if (file !== undefined) {
  subscribe('http.client.request.start', (message) => {
    const k = key(/** @type {{ request: import('node:http').ClientRequest }} */ (message).request);
    counts[k] = (counts[k] ?? 0) + 1;
  });
  // Written aside and renamed into place: the bench reads the file at any moment, and a read
  // that met a write half done would see no requests at all.
  const flush = () => {
    writeFileSync(`${file}.tmp`, JSON.stringify(counts));
    renameSync(`${file}.tmp`, file);
  };
  setInterval(flush, 500).unref();
  process.once('exit', flush);
}
