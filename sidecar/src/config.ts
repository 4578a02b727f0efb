import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { DEFAULT_FORBIDDEN_MODULES, type Env, EnvReader } from '@arcops/common';
import { ConfigError } from './errors.ts';
import { compileGlobs } from './glob.ts';

/** Where to look for forbidden files: a local folder, or a process's tree via /proc. */
export type ScanRoot =
  | { readonly kind: 'dir'; readonly path: string; readonly spec: string }
  | {
      readonly kind: 'proc';
      /** `auto`: the process listening on ARC_SERVICE_URL's port; else a substring of its command line. */
      readonly match: string;
      /** Folder inside the process's root (`/proc/<pid>/root<path>`); undefined: its working directory. */
      readonly path: string | undefined;
      readonly spec: string;
    };

/** Detection thresholds; every duration in milliseconds. */
export interface Thresholds {
  /** Every connection busy and callers queued continuously this long: PoolExhausted. */
  readonly exhaustedMs: number;
  /** Consecutive canary queries refused with the pool's wait-deadline error: PoolExhausted. */
  readonly canaryFailures: number;
  /** More wait-deadline timeouts than this within the window: PendingTimeouts. */
  readonly pendingTimeoutsMax: number;
  readonly pendingTimeoutsWindowMs: number;
  /** Oldest waiter waiting at least this long: PendingTimeouts. */
  readonly oldestWaitMaxMs: number;
  /** Fewer live connections than pool_size for this long: PoolCapacityLost. */
  readonly capacityLostMs: number;
  /** No usable answer from the service for this long: ServiceUnreachable. */
  readonly unreachableMs: number;
  /** Every check clear for this long before turning Healthy again (hysteresis). */
  readonly recoveryMs: number;
}

export interface SidecarConfig {
  readonly serviceUrl: string;
  readonly servicePort: number;
  readonly apiToken: string | undefined;
  readonly port: number;
  readonly host: string;
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  readonly canaryTimeoutMs: number;
  readonly thresholds: Thresholds;
  readonly forbiddenModules: readonly string[];
  readonly scanRoots: readonly ScanRoot[];
  readonly scanIntervalMs: number;
  /** How often to fetch /api/v1/runtime (loaded modules change rarely; the list is large). */
  readonly runtimeIntervalMs: number;
  readonly scanMaxDepth: number;
  readonly scanMaxEntries: number;
  readonly podName: string | undefined;
  readonly podNamespace: string | undefined;
  readonly conditionRefreshMs: number;
  /** KUBECONFIG; undefined means in-cluster credentials. */
  readonly kubeconfigPath: string | undefined;
  /** In-cluster API server (KUBERNETES_SERVICE_HOST/PORT, set by the kubelet in every pod). */
  readonly kubernetesServiceHost: string | undefined;
  readonly kubernetesServicePort: number;
  /** Where the pod's ServiceAccount token and CA are mounted (SERVICE_ACCOUNT_DIR). */
  readonly serviceAccountDir: string;
  readonly logLevel: string;
}



function readServiceUrl(r: EnvReader): { url: string; port: number } {
  const raw = r.str('ARC_SERVICE_URL', 'http://127.0.0.1:8000');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    r.problems.push(`ARC_SERVICE_URL must be a URL like http://127.0.0.1:8000, got ${JSON.stringify(raw)}`);
    return { url: 'http://127.0.0.1:8000', port: 8000 };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    r.problems.push(`ARC_SERVICE_URL must use http or https, got ${JSON.stringify(url.protocol)}`);
  }
  if (url.username !== '' || url.password !== '') {
    r.problems.push('ARC_SERVICE_URL must not carry credentials: use ARC_API_TOKEN or ARC_API_TOKEN_FILE');
  }
  if (url.search !== '' || url.hash !== '') r.problems.push('ARC_SERVICE_URL must not have a query or fragment');
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  return { url: `${url.origin}${url.pathname.replace(/\/+$/, '')}`, port };
}

function readToken(r: EnvReader): string | undefined {
  const inline = r.optStr('ARC_API_TOKEN');
  const file = r.optStr('ARC_API_TOKEN_FILE');
  if (inline !== undefined && file !== undefined) {
    r.problems.push('set either ARC_API_TOKEN or ARC_API_TOKEN_FILE, not both');
    return inline;
  }
  if (file === undefined) return inline;
  try {
    const token = readFileSync(file, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '' && !l.startsWith('#'));
    if (token === undefined) r.problems.push(`ARC_API_TOKEN_FILE ${file} holds no token`);
    return token;
  } catch (err) {
    r.problems.push(`ARC_API_TOKEN_FILE ${file} cannot be read: ${(err as Error).message}`);
    return undefined;
  }
}

function list(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function readForbidden(r: EnvReader): string[] {
  const raw = r.optStr('FORBIDDEN_MODULES');
  const patterns = raw === undefined ? [...DEFAULT_FORBIDDEN_MODULES] : list(raw);
  try {
    compileGlobs(patterns);
  } catch (err) {
    r.problems.push(`FORBIDDEN_MODULES: ${(err as Error).message}`);
  }
  return patterns;
}

/** `SCAN_ROOTS` entries: `/path`, `relative/path`, `proc:auto`, `proc:<cmdline-substring>`, `proc:<match>:/path`. */
export function parseScanRoot(spec: string, cwd: string): ScanRoot | string {
  if (!spec.startsWith('proc:')) return { kind: 'dir', path: isAbsolute(spec) ? spec : resolve(cwd, spec), spec };
  const rest = spec.slice('proc:'.length);
  const colon = rest.indexOf(':');
  const match = colon === -1 ? rest : rest.slice(0, colon);
  const path = colon === -1 ? undefined : rest.slice(colon + 1);
  if (match === '') return `SCAN_ROOTS entry ${JSON.stringify(spec)} names no process: use proc:auto or proc:<part of its command line>`;
  if (path !== undefined && !path.startsWith('/')) {
    return `SCAN_ROOTS entry ${JSON.stringify(spec)}: the folder after the process must be absolute (as the process sees it)`;
  }
  return { kind: 'proc', match, path, spec };
}

function readScanRoots(r: EnvReader, cwd: string): ScanRoot[] {
  const roots: ScanRoot[] = [];
  for (const spec of list(r.str('SCAN_ROOTS', ''))) {
    const root = parseScanRoot(spec, cwd);
    if (typeof root === 'string') r.problems.push(root);
    else roots.push(root);
  }
  return roots;
}

function readThresholds(r: EnvReader): Thresholds {
  return {
    exhaustedMs: r.seconds('POOL_EXHAUSTED_SECONDS', 15, 0, 86_400),
    canaryFailures: r.int('POOL_EXHAUSTED_CANARY_FAILURES', 2, 1, 1000),
    pendingTimeoutsMax: r.int('PENDING_TIMEOUTS_MAX_COUNT', 5, 0, 1_000_000),
    pendingTimeoutsWindowMs: r.seconds('PENDING_TIMEOUTS_WINDOW_SECONDS', 60, 0.1, 86_400),
    oldestWaitMaxMs: r.seconds('OLDEST_WAIT_MAX_SECONDS', 4, 0.01, 86_400),
    capacityLostMs: r.seconds('CAPACITY_LOST_SECONDS', 30, 0, 86_400),
    unreachableMs: r.seconds('SERVICE_UNREACHABLE_SECONDS', 15, 0, 86_400),
    recoveryMs: r.seconds('RECOVERY_CLEAR_SECONDS', 30, 0, 86_400),
  };
}

/**
 * Reads the sidecar's environment once, validates it, and returns a frozen config. Throws one
 * ConfigError listing every problem. `cwd` resolves relative SCAN_ROOTS.
 */
export function loadConfig(env: Env, cwd = '.'): SidecarConfig {
  const r = new EnvReader(env);
  const service = readServiceUrl(r);
  const probeIntervalMs = r.seconds('PROBE_INTERVAL_SECONDS', 5, 0.05, 3600);
  const podName = r.optStr('POD_NAME');
  const podNamespace = r.optStr('POD_NAMESPACE');
  if ((podName === undefined) !== (podNamespace === undefined)) {
    r.problems.push('POD_NAME and POD_NAMESPACE go together: set both to write the pod condition, or neither');
  }
  const logLevel = r.logLevel();
  const config: SidecarConfig = {
    serviceUrl: service.url,
    servicePort: service.port,
    apiToken: readToken(r),
    port: r.int('SIDECAR_PORT', 8081, 0, 65535),
    host: r.str('SIDECAR_HOST', '0.0.0.0'),
    probeIntervalMs,
    probeTimeoutMs: r.seconds('PROBE_TIMEOUT_SECONDS', 2, 0.05, 600),
    canaryTimeoutMs: r.seconds('CANARY_TIMEOUT_SECONDS', 15, 0.05, 3600),
    thresholds: Object.freeze(readThresholds(r)),
    forbiddenModules: Object.freeze(readForbidden(r)),
    scanRoots: Object.freeze(readScanRoots(r, cwd)),
    scanIntervalMs: r.seconds('SCAN_INTERVAL_SECONDS', probeIntervalMs / 1000, 0.05, 86_400),
    runtimeIntervalMs: r.seconds('RUNTIME_CHECK_INTERVAL_SECONDS', 30, 0.05, 86_400),
    scanMaxDepth: r.int('SCAN_MAX_DEPTH', 16, 1, 256),
    scanMaxEntries: r.int('SCAN_MAX_ENTRIES', 20_000, 1, 10_000_000),
    podName,
    podNamespace,
    conditionRefreshMs: r.seconds('CONDITION_REFRESH_SECONDS', 300, 1, 86_400),
    kubeconfigPath: r.optStr('KUBECONFIG'),
    kubernetesServiceHost: r.optStr('KUBERNETES_SERVICE_HOST'),
    kubernetesServicePort: r.int('KUBERNETES_SERVICE_PORT', 443, 1, 65535),
    serviceAccountDir: r.str('SERVICE_ACCOUNT_DIR', '/var/run/secrets/kubernetes.io/serviceaccount'),
    logLevel,
  };
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return Object.freeze(config);
}
