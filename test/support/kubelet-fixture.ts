// TEST FIXTURE standing in for the kubelet of our two containers. kwok marks pods Running but
// runs nothing; this fixture, for each Running pod of an ArcDeployment, runs the REAL query
// service (in this process, real DuckDB, 127.0.0.1, random port) and the REAL sidecar (its
// createSidecar: probe loop, file scan, and the condition writer patching that pod's
// arcops.dev/PoolHealthy through the real kube-apiserver, with that pod's name), and stops both
// when the pod is being deleted or gone. Nothing ever dials a pod IP: the sidecar probes its
// service on loopback, as it would inside the pod.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { SLOW_SQL, startService } from './service.ts';
import type { RunningService } from './service.ts';
import { FAST, startSidecar } from './sidecar.ts';
import type { RunningSidecar } from './sidecar.ts';

export interface FixturePod {
  name: string;
  uid: string;
  service: RunningService;
  sidecar: RunningSidecar;
  /** The folder the sidecar scans as the service's tree. */
  root: string;
  startedAt: number;
}

export interface KubeletFixtureOptions {
  kc: KubeConfig;
  namespace: string;
  /** The ArcDeployment's name (app.kubernetes.io/instance of its pods). */
  instance: string;
  /** Service environment before `serviceEnv` (default FIXTURE_SERVICE_ENV; `{}` for the service's defaults). */
  serviceBaseEnv?: Record<string, string>;
  /** Extra service environment (pool size, wait timeout). */
  serviceEnv?: Record<string, string>;
  /** Sidecar environment before `sidecarEnv` (default FIXTURE_SIDECAR_ENV; `{}` for the sidecar's defaults). */
  sidecarBaseEnv?: Record<string, string>;
  /** Extra sidecar environment (thresholds). */
  sidecarEnv?: Record<string, string>;
  /** Files (relative paths) to put into a new pod's tree before its sidecar starts. */
  filesFor?: (pod: V1Pod) => string[];
  pollMs?: number;
}

/** Small pool, short waits and fast sidecar thresholds: a fault is judged in about a second. */
export const FIXTURE_SERVICE_ENV: Readonly<Record<string, string>> = { DUCKDB_POOL_SIZE: '2', DUCKDB_POOL_TIMEOUT: '1', DUCKDB_THREADS: '1' };
export const FIXTURE_SIDECAR_ENV: Readonly<Record<string, string>> = {
  ...FAST,
  CANARY_TIMEOUT_SECONDS: '2',
  OLDEST_WAIT_MAX_SECONDS: '0.9',
  PENDING_TIMEOUTS_WINDOW_SECONDS: '1',
  SCAN_INTERVAL_SECONDS: '0.5',
};

export class KubeletFixture {
  readonly pods = new Map<string, FixturePod>();
  /** Pods this fixture ever ran, by name (to tell replacements from the first pods). */
  readonly started: string[] = [];
  private readonly o: KubeletFixtureOptions;
  private readonly core: CoreV1Api;
  private readonly tmp = mkdtempSync(join(tmpdir(), 'arc-kubelet-fixture-'));
  private readonly starting = new Set<string>();
  private running = true;
  private loop: Promise<void> | undefined;
  private readonly loads = new Map<string, (() => Promise<void>)[]>();

  constructor(options: KubeletFixtureOptions) {
    this.o = options;
    this.core = options.kc.makeApiClient(CoreV1Api);
  }

  start(): this {
    this.loop ??= this.run();
    return this;
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.sync();
      } catch {
        // the API server may be busy or restarting: look again
      }
      await new Promise((r) => setTimeout(r, this.o.pollMs ?? 200));
    }
  }

  private async sync(): Promise<void> {
    const list = await this.core.listNamespacedPod({ namespace: this.o.namespace, labelSelector: `app.kubernetes.io/name=arc,app.kubernetes.io/instance=${this.o.instance}` });
    const wanted = new Map<string, V1Pod>();
    for (const pod of list.items) {
      if (pod.metadata?.deletionTimestamp === undefined && pod.status?.phase === 'Running' && pod.metadata?.name) wanted.set(pod.metadata.name, pod);
    }
    for (const [name, running] of this.pods) {
      if (wanted.get(name)?.metadata?.uid !== running.uid) await this.stopPod(name);
    }
    for (const [name, pod] of wanted) {
      if (this.pods.has(name) || this.starting.has(name) || !this.running) continue;
      this.starting.add(name);
      try {
        await this.startPod(pod);
      } finally {
        this.starting.delete(name);
      }
    }
  }

  private async startPod(pod: V1Pod): Promise<void> {
    const name = pod.metadata?.name ?? '';
    const root = join(this.tmp, name);
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 'server.js'), '// the service entry point\n');
    for (const file of this.o.filesFor?.(pod) ?? []) {
      mkdirSync(dirname(join(root, file)), { recursive: true });
      writeFileSync(join(root, file), '# stale file\n');
    }
    const service = await startService({ ...(this.o.serviceBaseEnv ?? FIXTURE_SERVICE_ENV), ...this.o.serviceEnv });
    const sidecar = await startSidecar(
      {
        ARC_SERVICE_URL: service.url,
        ARC_API_TOKEN: service.token,
        POD_NAME: name,
        POD_NAMESPACE: this.o.namespace,
        SCAN_ROOTS: root,
        ...(this.o.sidecarBaseEnv ?? FIXTURE_SIDECAR_ENV),
        ...this.o.sidecarEnv,
      },
      { kubeConfig: this.o.kc },
    );
    this.pods.set(name, { name, uid: pod.metadata?.uid ?? '', service, sidecar, root, startedAt: Date.now() });
    this.started.push(name);
  }

  private async stopPod(name: string): Promise<void> {
    const p = this.pods.get(name);
    if (p === undefined) return;
    this.pods.delete(name);
    await Promise.all((this.loads.get(name) ?? []).map((r) => r()));
    this.loads.delete(name);
    await p.sidecar.close();
    // Keep-alive connections left by 503 answers would hold close() for a long time: cut them.
    const cut = setTimeout(() => p.service.service.app.server.closeAllConnections(), 3000);
    try {
      await p.service.close();
    } finally {
      clearTimeout(cut);
    }
  }

  /**
   * Exhausts one pod's real pool: every connection held by a query that runs until released,
   * and callers queueing behind them. Released when the pod stops or `release` is called.
   */
  exhaust(name: string, callers = 3): { release: () => Promise<void> } {
    const p = this.pods.get(name);
    if (p === undefined) throw new Error(`the fixture runs no pod ${name}`);
    const abort = new AbortController();
    const size = Number(this.o.serviceEnv?.['DUCKDB_POOL_SIZE'] ?? (this.o.serviceBaseEnv ?? FIXTURE_SERVICE_ENV)['DUCKDB_POOL_SIZE'] ?? 5);
    const held = Array.from({ length: size }, () => p.service.query({ sql: SLOW_SQL }, { signal: abort.signal }).then((r) => r.text(), () => ''));
    const loops = Array.from({ length: callers }, async () => {
      while (!abort.signal.aborted && this.pods.get(name) === p) {
        await p.service.query({ sql: 'SELECT 1' }, { signal: abort.signal }).then((r) => r.text(), () => '');
      }
    });
    let released: Promise<void> | undefined;
    const release = (): Promise<void> => {
      released ??= (async () => {
        abort.abort();
        await Promise.all([...held, ...loops]);
      })();
      return released;
    };
    this.loads.set(name, [...(this.loads.get(name) ?? []), release]);
    return { release };
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    for (const name of [...this.pods.keys()]) await this.stopPod(name);
    rmSync(this.tmp, { recursive: true, force: true });
  }
}
