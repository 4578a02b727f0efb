// The ArcDeployment's spec with every default filled in, and the fixed facts of the pod it
// becomes (ports, user, paths, container names). Pure.
import { DEFAULT_FORBIDDEN_MODULES } from '@arcops/common';
import type { ArcDeploymentSpec, IntOrString, RemediationMode, ResourceRequirements, Toleration } from './types.ts';

// ---- defaults (mirrored in crds/arcops.dev_arcdeployments.yaml; a test keeps them equal) -----

export const DEFAULTS = {
  replicas: 2,
  imagePullPolicy: 'IfNotPresent',
  logLevel: 'info',
  resources: {
    service: { requests: { cpu: '250m', memory: '512Mi' }, limits: { memory: '2Gi' } },
    sidecar: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } },
  },
  pool: { size: 5, waitTimeoutSeconds: 5, maxQueue: 1000, largeResultRows: 5000, queryTimeoutSeconds: 300 },
  apiTokenKey: 'tokens',
  mountPath: '/data',
  accessModes: ['ReadWriteOnce'],
  probe: {
    intervalSeconds: 5,
    timeoutSeconds: 2,
    canaryTimeoutSeconds: 15,
    exhaustedSeconds: 15,
    exhaustedCanaryFailures: 2,
    pendingTimeoutsMaxCount: 5,
    pendingTimeoutsWindowSeconds: 60,
    oldestWaitMaxSeconds: 4,
    capacityLostSeconds: 30,
    unreachableSeconds: 15,
    recoverySeconds: 30,
    scanIntervalSeconds: 30,
  },
  scanRoots: ['proc:auto'],
  forbiddenModules: DEFAULT_FORBIDDEN_MODULES,
  remediation: {
    mode: 'Auto' as RemediationMode,
    unhealthySeconds: 30,
    maxUnavailable: 1 as IntOrString,
    cooldownSeconds: 300,
    maxPerHour: 10,
    stormThreshold: '50%' as IntOrString,
    stormCooldownSeconds: 120,
    rollbackOnImageFault: false,
  },
  paused: false,
} as const;

/** Ports, user and paths of the pod; the service's and the sidecar's own defaults. */
export const SERVICE_PORT = 8000;
export const SIDECAR_PORT = 8081;
/** Both containers run as this user so the sidecar can read the service's files via /proc. */
export const RUN_AS_USER = 65532;
export const TOKEN_DIR = '/etc/arc/tokens';
export const TOKEN_FILE = `${TOKEN_DIR}/tokens`;
export const SA_TOKEN_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** libuv threads on top of the pool: each running query holds one (service config THREADPOOL_HEADROOM). */
export const THREADPOOL_HEADROOM = 4;
/**
 * How much DuckDB may spill to /tmp (DUCKDB_MAX_TEMP_SIZE), in MiB, and the room left beside it in
 * the /tmp emptyDir (its sizeLimit is the sum): a spilling query fails with DuckDB's own error
 * before the volume's limit would get the pod evicted.
 */
export const DUCKDB_TEMP_LIMIT_MIB = 1024;
export const TMP_HEADROOM_MIB = 64;
export const SERVICE_CONTAINER = 'arc';
export const SIDECAR_CONTAINER = 'sidecar';
/** The ClusterRole the chart installs for the sidecars (`SIDECAR_CLUSTER_ROLE` overrides it). */
export const SIDECAR_CLUSTER_ROLE = 'arc-operator-sidecar';

/** Resource requirements with every quantity as a string (as the API server stores them). */
export interface Quantities {
  limits?: Record<string, string>;
  requests?: Record<string, string>;
}

function quantities(r: ResourceRequirements): Quantities {
  const out: Quantities = {};
  for (const side of ['requests', 'limits'] as const) {
    const values = r[side];
    if (values !== undefined) out[side] = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, String(v)]));
  }
  return out;
}

export interface ResolvedSpec {
  replicas: number;
  image: string;
  sidecarImage: string;
  imagePullPolicy: string;
  imagePullSecrets: { name: string }[];
  logLevel: string;
  resources: { service: Quantities; sidecar: Quantities };
  pool: {
    size: number;
    waitTimeoutSeconds: number;
    maxQueue: number;
    largeResultRows: number;
    queryTimeoutSeconds: number;
    memoryLimit: string | undefined;
    threads: number | undefined;
  };
  apiTokenSecretRef: { name: string; key: string };
  data:
    | { mountPath: string; existingClaim: string; persistentVolumeClaim?: undefined }
    | { mountPath: string; existingClaim?: undefined; persistentVolumeClaim: { storageClassName?: string; size: IntOrString; accessModes: string[] } }
    | undefined;
  probe: Record<keyof typeof DEFAULTS.probe, number>;
  scanRoots: readonly string[];
  forbiddenModules: readonly string[];
  remediation: {
    mode: RemediationMode;
    unhealthySeconds: number;
    maxUnavailable: IntOrString;
    /** maxUnavailable resolved against replicas. */
    maxUnavailablePods: number;
    cooldownSeconds: number;
    maxPerHour: number;
    stormThreshold: IntOrString;
    /** stormThreshold resolved against replicas. */
    stormThresholdPods: number;
    stormCooldownSeconds: number;
    rollbackOnImageFault: boolean;
  };
  paused: boolean;
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
  affinity: Record<string, unknown> | undefined;
  topologySpreadConstraints: Record<string, unknown>[];
  podLabels: Record<string, string>;
  podAnnotations: Record<string, string>;
  priorityClassName: string | undefined;
}

/**
 * The spec with every default filled in, and the int-or-percent fields also resolved against
 * replicas. The API server defaults stored objects from the CRD
 * schema already; this keeps the operator correct for objects stored before a default existed.
 */
export function resolveSpec(spec: ArcDeploymentSpec): ResolvedSpec {
  const pool = spec.pool ?? {};
  const probe = spec.probe ?? {};
  const rem = spec.remediation ?? {};
  const d = DEFAULTS;
  const replicas = spec.replicas ?? d.replicas;
  const maxUnavailable = rem.maxUnavailable ?? d.remediation.maxUnavailable;
  const stormThreshold = rem.stormThreshold ?? d.remediation.stormThreshold;
  let data: ResolvedSpec['data'];
  if (spec.data?.existingClaim !== undefined) {
    data = { mountPath: spec.data.mountPath ?? d.mountPath, existingClaim: spec.data.existingClaim };
  } else if (spec.data?.persistentVolumeClaim !== undefined) {
    const t = spec.data.persistentVolumeClaim;
    data = {
      mountPath: spec.data.mountPath ?? d.mountPath,
      persistentVolumeClaim: {
        ...(t.storageClassName === undefined ? {} : { storageClassName: t.storageClassName }),
        size: t.size,
        accessModes: [...(t.accessModes ?? d.accessModes)],
      },
    };
  }
  return {
    replicas,
    image: spec.image,
    sidecarImage: spec.sidecarImage,
    imagePullPolicy: spec.imagePullPolicy ?? d.imagePullPolicy,
    imagePullSecrets: (spec.imagePullSecrets ?? []).map((s) => ({ name: s.name })),
    logLevel: spec.logLevel ?? d.logLevel,
    resources: {
      service: quantities(spec.resources?.service ?? d.resources.service),
      sidecar: quantities(spec.resources?.sidecar ?? d.resources.sidecar),
    },
    pool: {
      size: pool.size ?? d.pool.size,
      waitTimeoutSeconds: pool.waitTimeoutSeconds ?? d.pool.waitTimeoutSeconds,
      maxQueue: pool.maxQueue ?? d.pool.maxQueue,
      largeResultRows: pool.largeResultRows ?? d.pool.largeResultRows,
      queryTimeoutSeconds: pool.queryTimeoutSeconds ?? d.pool.queryTimeoutSeconds,
      memoryLimit: pool.memoryLimit,
      threads: pool.threads,
    },
    apiTokenSecretRef: { name: spec.apiTokenSecretRef.name, key: spec.apiTokenSecretRef.key ?? d.apiTokenKey },
    data,
    probe: Object.fromEntries(
      Object.entries(d.probe).map(([field, fallback]) => [field, probe[field as keyof typeof d.probe] ?? fallback]),
    ) as ResolvedSpec['probe'],
    scanRoots: probe.scanRoots ?? d.scanRoots,
    forbiddenModules: spec.forbiddenModules ?? d.forbiddenModules,
    remediation: {
      mode: rem.mode ?? d.remediation.mode,
      unhealthySeconds: rem.unhealthySeconds ?? d.remediation.unhealthySeconds,
      maxUnavailable,
      maxUnavailablePods: resolveMaxUnavailable(maxUnavailable, replicas),
      cooldownSeconds: rem.cooldownSeconds ?? d.remediation.cooldownSeconds,
      maxPerHour: rem.maxPerHour ?? d.remediation.maxPerHour,
      stormThreshold,
      stormThresholdPods: resolveIntOrPercent(stormThreshold, replicas),
      stormCooldownSeconds: rem.stormCooldownSeconds ?? d.remediation.stormCooldownSeconds,
      rollbackOnImageFault: rem.rollbackOnImageFault ?? d.remediation.rollbackOnImageFault,
    },
    paused: spec.paused ?? d.paused,
    nodeSelector: spec.nodeSelector ?? {},
    tolerations: spec.tolerations ?? [],
    affinity: spec.affinity,
    topologySpreadConstraints: spec.topologySpreadConstraints ?? [],
    podLabels: spec.podLabels ?? {},
    podAnnotations: spec.podAnnotations ?? {},
    priorityClassName: spec.priorityClassName,
  };
}

/**
 * remediation.maxUnavailable as a number of pods. A percentage rounds up, as a PDB does, but never
 * to every pod of a fleet of more than one: the CRD refuses a number that high ("at least one pod
 * has to keep serving"), and "90%" of 3 pods must not mean all 3. The PDB is written with this
 * number too, so that the budget and the planner agree.
 */
export function resolveMaxUnavailable(value: IntOrString, replicas: number): number {
  const n = resolveIntOrPercent(value, replicas);
  return replicas > 1 ? Math.min(n, replicas - 1) : n;
}

/** Resolves an int-or-percentage against a total (percentages round up, as a PDB does). */
export function resolveIntOrPercent(value: IntOrString, total: number): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+)%$/.exec(value);
  if (m) return Math.ceil((Number(m[1]) * total) / 100);
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}
