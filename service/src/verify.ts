import { matchesGlob } from 'node:path';
import { DEFAULT_FORBIDDEN_MODULES, EXPECTED_POOL_IMPLEMENTATION } from '@arcops/common';

/**
 * The deployment guide's verification, as code: health, a SELECT 1, ten concurrent queries,
 * sane pool metrics, and a clean runtime. Works against this service and upstream Arc (whose
 * pool figures live at /api/v1/metrics/query-pool; checks whose endpoint is missing are
 * reported as skipped, not passed).
 */
export interface VerifyOptions {
  url: string;
  token: string;
  /** Expected pool size; unset means "whatever the service reports, but > 0". */
  poolSize?: number;
  concurrency?: number;
  forbiddenModules?: readonly string[];
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export type CheckStatus = 'pass' | 'fail' | 'skip';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
}

export interface VerifyReport {
  url: string;
  ok: boolean;
  checks: CheckResult[];
}

interface Http {
  status: number;
  body: unknown;
}

interface PoolFigures {
  pool_size: number;
  active_connections: number;
  idle_connections: number;
  queue_depth: number;
  total_queries_timeout: number | undefined;
  pool_implementation: string | undefined;
  source: string;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export async function verify(opts: VerifyOptions): Promise<VerifyReport> {
  const doFetch = opts.fetch ?? fetch;
  const base = opts.url.replace(/\/+$/, '');
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const auth = { authorization: `Bearer ${opts.token}` };
  const checks: CheckResult[] = [];
  const add = (name: string, status: CheckStatus, detail: string) => checks.push({ name, status, detail });

  const call = async (path: string, init?: { method?: string; body?: unknown; auth?: boolean }): Promise<Http> => {
    const res = await doFetch(`${base}${path}`, {
      method: init?.method ?? 'GET',
      headers: { ...(init?.auth === false ? {} : auth), ...(init?.body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: init?.body === undefined ? null : JSON.stringify(init.body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, body };
  };
  const query = (sql: string) => call('/api/v1/query', { method: 'POST', body: { sql } });

  // 1. health
  try {
    const h = await call('/health', { auth: false });
    add('health', h.status === 200 ? 'pass' : 'fail', `GET /health answered ${h.status}`);
  } catch (err) {
    add('health', 'fail', `GET /health failed: ${(err as Error).message}`);
    return { url: base, ok: false, checks };
  }

  // 2. SELECT 1
  const one = await query('SELECT 1 AS one').catch((err: unknown) => ({ status: 0, body: String(err) }));
  const oneBody = one.body as { success?: boolean; data?: unknown[][]; error?: string };
  add(
    'select-1',
    one.status === 200 && oneBody.success === true && oneBody.data?.[0]?.[0] === 1 ? 'pass' : 'fail',
    one.status === 200 ? `success=${String(oneBody.success)}` : `HTTP ${one.status}: ${oneBody.error ?? JSON.stringify(one.body).slice(0, 200)}`,
  );

  // 3. the pool before the burst
  const before = await poolFigures(call);

  // 4. ten concurrent queries, all success:true
  const n = opts.concurrency ?? 10;
  const burst = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      query(`SELECT ${i} AS i, count(*) AS n FROM range(1000)`).catch((err: unknown) => ({ status: 0, body: { error: String(err) } })),
    ),
  );
  const failed = burst.filter((r) => r.status !== 200 || (r.body as { success?: boolean }).success !== true);
  add(
    'concurrent-queries',
    failed.length === 0 ? 'pass' : 'fail',
    failed.length === 0
      ? `${n}/${n} concurrent queries succeeded`
      : `${n - failed.length}/${n} succeeded; first failure: HTTP ${failed[0]!.status} ${(failed[0]!.body as { error?: string }).error ?? ''}`,
  );

  // 5. pool metrics
  const after = await poolFigures(call);
  if (after === undefined) {
    add('pool-metrics', 'fail', 'neither /api/v1/metrics nor /api/v1/metrics/query-pool gave pool figures');
  } else {
    const problems: string[] = [];
    if (opts.poolSize !== undefined && after.pool_size !== opts.poolSize) problems.push(`pool_size ${after.pool_size}, expected ${opts.poolSize}`);
    if (after.pool_size <= 0) problems.push(`pool_size ${after.pool_size}`);
    if (after.active_connections < 0 || after.active_connections > after.pool_size) {
      problems.push(`active_connections ${after.active_connections} outside 0..${after.pool_size}`);
    }
    if (after.active_connections + after.idle_connections < after.pool_size && after.queue_depth === 0) {
      problems.push(`only ${after.active_connections + after.idle_connections} of ${after.pool_size} connections alive (lost capacity)`);
    }
    const grew = before?.total_queries_timeout !== undefined && after.total_queries_timeout !== undefined ? after.total_queries_timeout - before.total_queries_timeout : 0;
    if (grew > 0) problems.push(`total_queries_timeout grew by ${grew} during the check`);
    add(
      'pool-metrics',
      problems.length === 0 ? 'pass' : 'fail',
      problems.length === 0
        ? `pool_size ${after.pool_size}, active ${after.active_connections}, idle ${after.idle_connections}, queue ${after.queue_depth}, total_queries_timeout ${after.total_queries_timeout ?? 'n/a'} (${after.source})`
        : problems.join('; '),
    );
  }

  // 6. runtime: the pool implementation and the modules loaded
  const forbidden = opts.forbiddenModules ?? DEFAULT_FORBIDDEN_MODULES;
  const rt = await call('/api/v1/runtime').catch(() => ({ status: 0, body: undefined }));
  if (rt.status === 404 || rt.status === 0) {
    const impl = after?.pool_implementation;
    if (impl === undefined) add('runtime', 'skip', 'no /api/v1/runtime and no pool_implementation in the metrics (upstream Arc)');
    else add('runtime', impl === EXPECTED_POOL_IMPLEMENTATION ? 'pass' : 'fail', `pool_implementation ${impl} (from the metrics)`);
  } else {
    const body = rt.body as { pool_implementation?: string; loaded_modules?: string[] };
    const modules = Array.isArray(body.loaded_modules) ? body.loaded_modules : [];
    const hits = modules.filter((m) => forbidden.some((g) => matchesGlob(m, g)));
    const implOk = body.pool_implementation === EXPECTED_POOL_IMPLEMENTATION;
    add(
      'runtime',
      implOk && hits.length === 0 ? 'pass' : 'fail',
      [
        `pool_implementation ${body.pool_implementation ?? 'missing'}${implOk ? '' : ` (expected ${EXPECTED_POOL_IMPLEMENTATION})`}`,
        hits.length === 0 ? `${modules.length} modules loaded, none forbidden` : `forbidden modules loaded: ${hits.join(', ')}`,
      ].join('; '),
    );
  }
  return { url: base, ok: checks.every((c) => c.status !== 'fail'), checks };
}

async function poolFigures(call: (path: string) => Promise<Http>): Promise<PoolFigures | undefined> {
  const flat = await call('/api/v1/metrics').catch(() => undefined);
  const f = flat?.status === 200 ? (flat.body as Record<string, unknown>) : undefined;
  if (f !== undefined && num(f.pool_size) !== undefined && num(f.active_connections) !== undefined) {
    return {
      pool_size: num(f.pool_size)!,
      active_connections: num(f.active_connections)!,
      idle_connections: num(f.idle_connections) ?? 0,
      queue_depth: num(f.queue_depth) ?? 0,
      total_queries_timeout: num(f.total_queries_timeout),
      pool_implementation: typeof f.pool_implementation === 'string' ? f.pool_implementation : undefined,
      source: '/api/v1/metrics',
    };
  }
  const qp = await call('/api/v1/metrics/query-pool').catch(() => undefined);
  const p = qp?.status === 200 ? (qp.body as { pool?: Record<string, unknown> }).pool : undefined;
  if (p !== undefined && num(p.pool_size) !== undefined) {
    return {
      pool_size: num(p.pool_size)!,
      active_connections: num(p.active_connections) ?? 0,
      idle_connections: num(p.idle_connections) ?? 0,
      queue_depth: num(p.queue_depth) ?? 0,
      total_queries_timeout: num(p.total_queries_timeout),
      pool_implementation: typeof p.pool_implementation === 'string' ? p.pool_implementation : undefined,
      source: '/api/v1/metrics/query-pool',
    };
  }
  return undefined;
}

export function formatReport(report: VerifyReport): string {
  const mark: Record<CheckStatus, string> = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' };
  const lines = [`arc verify ${report.url}`];
  for (const c of report.checks) lines.push(`  ${mark[c.status]}  ${c.name.padEnd(20)} ${c.detail}`);
  const failed = report.checks.filter((c) => c.status === 'fail').length;
  lines.push(report.ok ? `OK: ${report.checks.length - failed} checks passed or skipped` : `FAILED: ${failed} of ${report.checks.length} checks failed`);
  return lines.join('\n');
}
