#!/usr/bin/env node
// arc-verify: the deployment guide's checklist against a running service.
//   npm run verify -- --url http://127.0.0.1:8000 --token TOKEN [--pool-size 5] [--json]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatReport, verify } from './verify.ts';

const HELP = `Usage: arc-verify --url URL (--token TOKEN | --token-file FILE) [options]

Runs the deployment guide's verification against a running Arc query service (this
project's or upstream Arc): health, SELECT 1, concurrent queries all successful, pool metrics
sane, pool implementation and loaded modules clean. Exits 0 when every check passes or is
skipped, 1 when one fails, 2 on bad usage.

Options:
  --url URL            service base URL (default $ARC_URL or http://127.0.0.1:8000)
  --token TOKEN        API token (default $ARC_API_TOKEN)
  --token-file FILE    read the token from a file
  --pool-size N        fail unless the pool reports exactly N connections
  --concurrency N      concurrent queries to send (default 10)
  --forbidden GLOBS    comma-separated globs of modules that must not be loaded
  --timeout SECONDS    per-request timeout (default 15)
  --json               print the report as JSON
  -h, --help           this text`;

function fail(message: string): never {
  process.stderr.write(`arc-verify: ${message}\n\n${HELP}\n`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      'pool-size': { type: 'string' },
      concurrency: { type: 'string' },
      forbidden: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
} catch (err) {
  fail((err as Error).message);
}
const v = parsed.values;
if (v.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
const env = process.env;
const url = v.url ?? env.ARC_URL ?? 'http://127.0.0.1:8000';
let token = v.token ?? env.ARC_API_TOKEN;
if (v['token-file'] !== undefined) token = readFileSync(v['token-file'], 'utf8').trim();
if (token === undefined || token === '') fail('a token is required (--token, --token-file or ARC_API_TOKEN)');
const int = (name: string, raw: string | undefined): number | undefined => {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) fail(`--${name} must be a positive integer, got ${raw}`);
  return n;
};
try {
  new URL(url);
} catch {
  fail(`--url is not a URL: ${url}`);
}
const report = await verify({
  url,
  token,
  poolSize: int('pool-size', v['pool-size']),
  concurrency: int('concurrency', v.concurrency),
  forbiddenModules: v.forbidden?.split(',').map((s) => s.trim()).filter(Boolean),
  timeoutMs: (int('timeout', v.timeout) ?? 15) * 1000,
});
process.stdout.write(`${v.json ? JSON.stringify(report, null, 2) : formatReport(report)}\n`);
process.exit(report.ok ? 0 : 1);
