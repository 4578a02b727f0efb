// The pure half of the controller: from an ArcDeployment, the objects it should own; from what is
// observed, its status. No I/O, no clock of its own, inputs are never mutated.
import { createHash } from 'node:crypto';
import { DEFAULT_FORBIDDEN_MODULES, POOL_HEALTHY_CONDITION } from '@arcops/common';
import type {
  V1Container,
  V1Deployment,
  V1EnvVar,
  V1PersistentVolumeClaim,
  V1PodDisruptionBudget,
  V1PodSpec,
  V1RoleBinding,
  V1Service,
  V1ServiceAccount,
  V1Volume,
} from '@kubernetes/client-node';
import {
  ANNOTATION_CONFIG_HASH,
  API_VERSION,
  APP_NAME,
  KIND,
  LABEL_COMPONENT,
  LABEL_INSTANCE,
  LABEL_MANAGED_BY,
  LABEL_NAME,
  LABEL_PART_OF,
  MANAGED_BY,
} from './types.ts';
import type {
  ArcDeployment,
  ArcDeploymentSpec,
  ArcDeploymentStatus,
  Condition,
  IntOrString,
  ObjectMeta,
  ObservedDeployment,
  ObservedPod,
  OwnerReference,
  RemediationMode,
  ResourceRequirements,
  Toleration,
} from './types.ts';

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
    cooldownSeconds: number;
    maxPerHour: number;
    stormThreshold: IntOrString;
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
 * The spec with every default filled in. The API server defaults stored objects from the CRD
 * schema already; this keeps the operator correct for objects stored before a default existed.
 */
export function resolveSpec(spec: ArcDeploymentSpec): ResolvedSpec {
  const pool = spec.pool ?? {};
  const probe = spec.probe ?? {};
  const rem = spec.remediation ?? {};
  const d = DEFAULTS;
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
    replicas: spec.replicas ?? d.replicas,
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
      maxUnavailable: rem.maxUnavailable ?? d.remediation.maxUnavailable,
      cooldownSeconds: rem.cooldownSeconds ?? d.remediation.cooldownSeconds,
      maxPerHour: rem.maxPerHour ?? d.remediation.maxPerHour,
      stormThreshold: rem.stormThreshold ?? d.remediation.stormThreshold,
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

// ---- names, labels, owner -------------------------------------------------------------------

export interface OwnedNames {
  deployment: string;
  service: string;
  serviceAccount: string;
  /** The Role the sidecar's grant used to be (before the shared ClusterRole): removed once replaced. */
  legacyRole: string;
  roleBinding: string;
  podDisruptionBudget: string;
  persistentVolumeClaim: string;
}

export function ownedNames(name: string): OwnedNames {
  return {
    deployment: name,
    service: name,
    serviceAccount: name,
    legacyRole: `${name}-sidecar`,
    roleBinding: `${name}-sidecar`,
    podDisruptionBudget: name,
    persistentVolumeClaim: `${name}-data`,
  };
}

/** The labels the Deployment selects its pods by (immutable once created). */
export function selectorLabels(name: string): Record<string, string> {
  return { [LABEL_NAME]: APP_NAME, [LABEL_INSTANCE]: name };
}

/** `kubectl get pods -l` form of the selector, sorted (status.selector). */
export function selectorString(name: string): string {
  const labels = selectorLabels(name);
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

export function commonLabels(name: string, component: string): Record<string, string> {
  return { ...selectorLabels(name), [LABEL_COMPONENT]: component, [LABEL_PART_OF]: 'arc-operator', [LABEL_MANAGED_BY]: MANAGED_BY };
}

export function ownerReference(arcd: ArcDeployment): OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: arcd.metadata.name,
    uid: arcd.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

function meta(arcd: ArcDeployment, name: string, component: string): ObjectMeta & { name: string; namespace: string } {
  return {
    name,
    namespace: arcd.metadata.namespace,
    labels: commonLabels(arcd.metadata.name, component),
    ownerReferences: [ownerReference(arcd)],
  };
}

/** Resolves an int-or-percentage against a total (percentages round up, as a PDB does). */
export function resolveIntOrPercent(value: IntOrString, total: number): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+)%$/.exec(value);
  if (m) return Math.ceil((Number(m[1]) * total) / 100);
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

/** Deterministic JSON (sorted keys) for hashing. */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function shortHash(value: unknown): string {
  return createHash('sha256').update(stableStringify(value)).digest('hex').slice(0, 16);
}

// ---- the pod --------------------------------------------------------------------------------

function env(name: string, value: string | number): V1EnvVar {
  return { name, value: String(value) };
}

/** The query service's environment (architecture.md, "Environment (service)"). */
export function serviceEnv(spec: ResolvedSpec): V1EnvVar[] {
  const vars: V1EnvVar[] = [
    env('PORT', SERVICE_PORT),
    env('HOST', '0.0.0.0'),
    env('ARC_API_TOKENS_FILE', TOKEN_FILE),
    env('DUCKDB_PATH', ':memory:'),
  ];
  if (spec.data !== undefined) vars.push(env('ARC_DATA_DIR', spec.data.mountPath));
  vars.push(
    env('DUCKDB_POOL_SIZE', spec.pool.size),
    env('DUCKDB_POOL_TIMEOUT', spec.pool.waitTimeoutSeconds),
    env('DUCKDB_MAX_QUEUE', spec.pool.maxQueue),
    env('DUCKDB_LARGE_RESULT_ROWS', spec.pool.largeResultRows),
    env('DUCKDB_QUERY_TIMEOUT', spec.pool.queryTimeoutSeconds),
  );
  if (spec.pool.memoryLimit !== undefined) vars.push(env('DUCKDB_MEMORY_LIMIT', spec.pool.memoryLimit));
  if (spec.pool.threads !== undefined) vars.push(env('DUCKDB_THREADS', spec.pool.threads));
  vars.push(
    env('UV_THREADPOOL_SIZE', spec.pool.size + THREADPOOL_HEADROOM),
    env('TMPDIR', '/tmp'),
    env('DUCKDB_MAX_TEMP_SIZE', `${DUCKDB_TEMP_LIMIT_MIB}MiB`),
    env('LOG_LEVEL', spec.logLevel),
  );
  return vars;
}

/**
 * The sidecar's environment (architecture.md, "Sidecar contract"). The threshold names carry
 * their units; the table is the one place that maps spec.probe to them.
 */
export const PROBE_ENV: ReadonlyArray<readonly [keyof ResolvedSpec['probe'], string]> = [
  ['intervalSeconds', 'PROBE_INTERVAL_SECONDS'],
  ['timeoutSeconds', 'PROBE_TIMEOUT_SECONDS'],
  ['canaryTimeoutSeconds', 'CANARY_TIMEOUT_SECONDS'],
  ['exhaustedSeconds', 'POOL_EXHAUSTED_SECONDS'],
  ['exhaustedCanaryFailures', 'POOL_EXHAUSTED_CANARY_FAILURES'],
  ['pendingTimeoutsMaxCount', 'PENDING_TIMEOUTS_MAX_COUNT'],
  ['pendingTimeoutsWindowSeconds', 'PENDING_TIMEOUTS_WINDOW_SECONDS'],
  ['oldestWaitMaxSeconds', 'OLDEST_WAIT_MAX_SECONDS'],
  ['capacityLostSeconds', 'CAPACITY_LOST_SECONDS'],
  ['unreachableSeconds', 'SERVICE_UNREACHABLE_SECONDS'],
  ['recoverySeconds', 'RECOVERY_CLEAR_SECONDS'],
  ['scanIntervalSeconds', 'SCAN_INTERVAL_SECONDS'],
];

export function sidecarEnv(spec: ResolvedSpec): V1EnvVar[] {
  return [
    env('ARC_SERVICE_URL', `http://127.0.0.1:${SERVICE_PORT}`),
    env('ARC_API_TOKEN_FILE', TOKEN_FILE),
    env('SIDECAR_PORT', SIDECAR_PORT),
    ...PROBE_ENV.map(([field, name]) => env(name, spec.probe[field])),
    env('FORBIDDEN_MODULES', spec.forbiddenModules.join(',')),
    env('SCAN_ROOTS', spec.scanRoots.join(',')),
    { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
    { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } },
    env('LOG_LEVEL', spec.logLevel),
  ];
}

const containerSecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  runAsUser: RUN_AS_USER,
  runAsGroup: RUN_AS_USER,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

function serviceContainer(spec: ResolvedSpec): V1Container {
  const mounts = [
    { name: 'tmp', mountPath: '/tmp' },
    { name: 'api-tokens', mountPath: TOKEN_DIR, readOnly: true },
  ];
  if (spec.data !== undefined) mounts.push({ name: 'data', mountPath: spec.data.mountPath, readOnly: true });
  return {
    name: SERVICE_CONTAINER,
    image: spec.image,
    imagePullPolicy: spec.imagePullPolicy,
    ports: [{ name: 'http', containerPort: SERVICE_PORT, protocol: 'TCP' }],
    env: serviceEnv(spec),
    resources: spec.resources.service,
    startupProbe: { httpGet: { path: '/health', port: 'http' }, periodSeconds: 2, failureThreshold: 30, timeoutSeconds: 2 },
    livenessProbe: { httpGet: { path: '/health', port: 'http' }, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 2 },
    readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 5, failureThreshold: 2, timeoutSeconds: 2 },
    securityContext: containerSecurityContext,
    volumeMounts: mounts,
  };
}

function sidecarContainer(spec: ResolvedSpec): V1Container {
  return {
    name: SIDECAR_CONTAINER,
    image: spec.sidecarImage,
    imagePullPolicy: spec.imagePullPolicy,
    ports: [{ name: 'sidecar', containerPort: SIDECAR_PORT, protocol: 'TCP' }],
    env: sidecarEnv(spec),
    resources: spec.resources.sidecar,
    livenessProbe: { httpGet: { path: '/healthz', port: 'sidecar' }, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 2 },
    readinessProbe: { httpGet: { path: '/readyz', port: 'sidecar' }, periodSeconds: 5, failureThreshold: 2, timeoutSeconds: 2 },
    securityContext: containerSecurityContext,
    volumeMounts: [
      { name: 'sidecar-tmp', mountPath: '/tmp' },
      { name: 'api-tokens', mountPath: TOKEN_DIR, readOnly: true },
      // The pod does not automount a token; only the sidecar gets one, to write its pod's condition.
      { name: 'kube-api-access', mountPath: SA_TOKEN_DIR, readOnly: true },
    ],
  };
}

function volumes(spec: ResolvedSpec, names: OwnedNames): V1Volume[] {
  const list: V1Volume[] = [
    { name: 'tmp', emptyDir: { sizeLimit: `${DUCKDB_TEMP_LIMIT_MIB + TMP_HEADROOM_MIB}Mi` } },
    { name: 'sidecar-tmp', emptyDir: { sizeLimit: '64Mi' } },
    {
      name: 'api-tokens',
      secret: { secretName: spec.apiTokenSecretRef.name, items: [{ key: spec.apiTokenSecretRef.key, path: 'tokens' }], defaultMode: 0o440 },
    },
    {
      name: 'kube-api-access',
      projected: {
        defaultMode: 0o444,
        sources: [
          { serviceAccountToken: { path: 'token', expirationSeconds: 3607 } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
        ],
      },
    },
  ];
  if (spec.data !== undefined) {
    const claimName = spec.data.existingClaim ?? names.persistentVolumeClaim;
    list.push({ name: 'data', persistentVolumeClaim: { claimName, readOnly: true } });
  }
  return list;
}

function podSpec(spec: ResolvedSpec, names: OwnedNames): V1PodSpec {
  const pod: V1PodSpec = {
    serviceAccountName: names.serviceAccount,
    automountServiceAccountToken: false,
    shareProcessNamespace: true,
    enableServiceLinks: false,
    terminationGracePeriodSeconds: 30,
    readinessGates: [{ conditionType: POOL_HEALTHY_CONDITION }],
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUN_AS_USER,
      runAsGroup: RUN_AS_USER,
      fsGroup: RUN_AS_USER,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: [serviceContainer(spec), sidecarContainer(spec)],
    volumes: volumes(spec, names),
  };
  if (spec.imagePullSecrets.length > 0) pod.imagePullSecrets = spec.imagePullSecrets;
  if (Object.keys(spec.nodeSelector).length > 0) pod.nodeSelector = spec.nodeSelector;
  if (spec.tolerations.length > 0) pod.tolerations = spec.tolerations;
  if (spec.affinity !== undefined && Object.keys(spec.affinity).length > 0) pod.affinity = spec.affinity;
  if (spec.topologySpreadConstraints.length > 0) pod.topologySpreadConstraints = spec.topologySpreadConstraints as unknown as V1PodSpec['topologySpreadConstraints'];
  if (spec.priorityClassName !== undefined) pod.priorityClassName = spec.priorityClassName;
  return pod;
}

// ---- the owned objects ----------------------------------------------------------------------

export interface PlanOptions {
  /**
   * Hash of the API token Secret's content. The service reads its tokens once at start, so a
   * new token must roll the pods: the hash goes into the pod template's config-hash annotation.
   */
  tokenHash?: string;
  /** The ClusterRole the sidecar's RoleBinding refers to (default SIDECAR_CLUSTER_ROLE). */
  sidecarClusterRole?: string;
}

/** An object to apply: the client-node type for its fields, JSON timestamps, a name and namespace. */
export type Desired<T> = Omit<T, 'metadata'> & {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta & { name: string; namespace: string };
  [field: string]: unknown;
};

export type DesiredObject =
  | Desired<V1ServiceAccount>
  | Desired<V1RoleBinding>
  | Desired<V1PersistentVolumeClaim>
  | Desired<V1Service>
  | Desired<V1PodDisruptionBudget>
  | Desired<V1Deployment>;

export function desiredServiceAccount(arcd: ArcDeployment): Desired<V1ServiceAccount> {
  const n = ownedNames(arcd.metadata.name);
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(arcd, n.serviceAccount, 'sidecar'), automountServiceAccountToken: false };
}

/**
 * The sidecar's grant: its ServiceAccount bound, in the ArcDeployment's namespace, to the
 * ClusterRole the chart installs (get pods, patch pods/status; `SIDECAR_CLUSTER_ROLE`). One
 * shared ClusterRole rather than a Role per ArcDeployment: the operator holds `bind` on that one
 * ClusterRole, so the API server does not have to resolve every rule the operator holds in the
 * namespace to check that a new Role or binding grants nothing more (work that grows with the
 * number of RoleBindings there: ~1 s per Role and per binding with 1000 in one namespace).
 */
export function desiredRoleBinding(arcd: ArcDeployment, clusterRole: string = SIDECAR_CLUSTER_ROLE): Desired<V1RoleBinding> {
  const n = ownedNames(arcd.metadata.name);
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: meta(arcd, n.roleBinding, 'sidecar'),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
    subjects: [{ kind: 'ServiceAccount', name: n.serviceAccount, namespace: arcd.metadata.namespace }],
  };
}

export function desiredPersistentVolumeClaim(arcd: ArcDeployment, spec: ResolvedSpec): Desired<V1PersistentVolumeClaim> | undefined {
  const template = spec.data?.persistentVolumeClaim;
  if (template === undefined) return undefined;
  const n = ownedNames(arcd.metadata.name);
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: meta(arcd, n.persistentVolumeClaim, 'data'),
    spec: {
      accessModes: template.accessModes,
      resources: { requests: { storage: String(template.size) } },
      ...(template.storageClassName === undefined ? {} : { storageClassName: template.storageClassName }),
    },
  };
}

export function desiredService(arcd: ArcDeployment): Desired<V1Service> {
  const n = ownedNames(arcd.metadata.name);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(arcd, n.service, 'query-service'),
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(arcd.metadata.name),
      ports: [{ name: 'http', port: SERVICE_PORT, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

export function desiredPodDisruptionBudget(arcd: ArcDeployment, spec: ResolvedSpec): Desired<V1PodDisruptionBudget> {
  const n = ownedNames(arcd.metadata.name);
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(arcd, n.podDisruptionBudget, 'query-service'),
    spec: {
      maxUnavailable: spec.remediation.maxUnavailable,
      selector: { matchLabels: selectorLabels(arcd.metadata.name) },
      // A pod that is not Ready may always be evicted: it serves nothing, so evicting it takes
      // nothing away. With IfHealthyBudget two sick pods out of three would each block the
      // other's eviction for as long as both stay sick. The budget still guards the Ready pods;
      // remediation keeps its own maxUnavailable for the pods it takes (remediation.ts).
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
    },
  };
}

export function desiredDeployment(arcd: ArcDeployment, spec: ResolvedSpec, options: PlanOptions = {}): Desired<V1Deployment> {
  const n = ownedNames(arcd.metadata.name);
  const podLabels = { ...spec.podLabels, ...commonLabels(arcd.metadata.name, 'query-service') };
  const pod = podSpec(spec, n);
  const annotations = {
    ...spec.podAnnotations,
    [ANNOTATION_CONFIG_HASH]: shortHash({ pod, podLabels, podAnnotations: spec.podAnnotations, token: options.tokenHash ?? '' }),
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(arcd, n.deployment, 'query-service'),
    spec: {
      replicas: spec.replicas,
      selector: { matchLabels: selectorLabels(arcd.metadata.name) },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
      // Capacity never drops during a rollout: a new pod must report a healthy pool first.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 } },
      // spec before metadata: a diff then names the edited pod field rather than the hash.
      template: { spec: pod, metadata: { labels: podLabels, annotations } },
    },
  };
}

/** Every object the ArcDeployment should own, in the order they are applied. */
export function desiredObjects(arcd: ArcDeployment, options: PlanOptions = {}): DesiredObject[] {
  const spec = resolveSpec(arcd.spec);
  const objects: DesiredObject[] = [desiredServiceAccount(arcd), desiredRoleBinding(arcd, options.sidecarClusterRole)];
  const pvc = desiredPersistentVolumeClaim(arcd, spec);
  if (pvc !== undefined) objects.push(pvc);
  objects.push(desiredService(arcd), desiredPodDisruptionBudget(arcd, spec), desiredDeployment(arcd, spec, options));
  return objects;
}

// ---- status ---------------------------------------------------------------------------------

export type SecretCheck =
  | { state: 'ok' }
  | { state: 'unchecked' }
  | { state: 'missing'; name: string }
  | { state: 'keyMissing'; name: string; key: string };

export interface ApplyProblem {
  kind: string;
  name: string;
  reason: 'ApplyFailed' | 'ResourceConflict';
  message: string;
}

export interface Observation {
  arcd: ArcDeployment;
  /** The owned Deployment as last seen (after this pass's apply, if any). */
  deployment: ObservedDeployment | undefined;
  /** Pods selected by the ArcDeployment's selector. */
  pods: readonly ObservedPod[];
  secret: SecretCheck;
  problems: readonly ApplyProblem[];
  /** Conditions decided elsewhere (remediation), merged as they are. */
  extraConditions?: readonly NewCondition[];
  /** Degraded as remediation sees it (an image fault); a blocked rollout still wins. */
  degradedOverride?: NewCondition;
}

export const CONDITION_AVAILABLE = 'Available';
export const CONDITION_PROGRESSING = 'Progressing';
export const CONDITION_DEGRADED = 'Degraded';

export type NewCondition = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/** RFC 3339 with second precision, as metav1.Time serializes. */
export function rfc3339(now: Date): string {
  return new Date(Math.floor(now.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function isLivePod(pod: ObservedPod): boolean {
  return pod.metadata?.deletionTimestamp === undefined && pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed';
}

/** The pod's Ready condition is True (the kubelet folds the readiness gates into it). */
function isReadyPod(pod: ObservedPod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
}

export function poolCondition(pod: ObservedPod): { status: string; reason?: string; message?: string; lastTransitionTime?: string } | undefined {
  return pod.status?.conditions?.find((c) => c.type === POOL_HEALTHY_CONDITION);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function listPods(pods: readonly ObservedPod[], max = 3): string {
  const names = pods.map((p) => {
    const c = poolCondition(p);
    return `${p.metadata?.name ?? '?'} (${c?.reason ?? 'Unknown'})`;
  });
  names.sort();
  return names.length > max ? `${names.slice(0, max).join(', ')} and ${names.length - max} more` : names.join(', ');
}

function blockingProblem(o: Observation, spec: ResolvedSpec): NewCondition | undefined {
  if (o.secret.state === 'missing') {
    return {
      type: CONDITION_DEGRADED,
      status: 'True',
      reason: 'SecretNotFound',
      message:
        `Secret ${o.secret.name} (spec.apiTokenSecretRef) was not found in namespace ${o.arcd.metadata.namespace}: ` +
        `create it with the API tokens under the key "${spec.apiTokenSecretRef.key}". The Deployment is not created or updated until it exists.`,
    };
  }
  if (o.secret.state === 'keyMissing') {
    return {
      type: CONDITION_DEGRADED,
      status: 'True',
      reason: 'SecretKeyNotFound',
      message: `Secret ${o.secret.name} has no key "${o.secret.key}" (spec.apiTokenSecretRef.key): add the API tokens under it. The Deployment is not created or updated until then.`,
    };
  }
  const conflict = o.problems.find((p) => p.reason === 'ResourceConflict');
  if (conflict) return { type: CONDITION_DEGRADED, status: 'True', reason: 'ResourceConflict', message: conflict.message };
  const failed = o.problems.filter((p) => p.reason === 'ApplyFailed');
  if (failed.length > 0) {
    return {
      type: CONDITION_DEGRADED,
      status: 'True',
      reason: 'ApplyFailed',
      message: failed.map((p) => `${p.kind} ${p.name}: ${p.message}`).join('; '),
    };
  }
  return undefined;
}

function rolloutState(o: Observation, desired: number): { done: boolean; stalled?: string; message: string } {
  const d = o.deployment;
  if (d === undefined) return { done: false, message: 'the Deployment does not exist yet' };
  const st = d.status ?? {};
  const stalled = st.conditions?.find((c) => c.type === 'Progressing' && c.status === 'False' && c.reason === 'ProgressDeadlineExceeded');
  if (stalled) {
    return { done: false, stalled: stalled.message ?? 'the rollout exceeded its progress deadline', message: stalled.message ?? '' };
  }
  const generation = d.metadata?.generation ?? 0;
  // A Deployment its controller has never seen runs no pods: said as it will be said once seen,
  // so that its first status (observed, no pods yet) changes nothing here and costs no write.
  if (st.observedGeneration === undefined) return { done: false, message: `0 of ${plural(desired, 'pod')} run the current template` };
  if (st.observedGeneration < generation) return { done: false, message: 'waiting for the Deployment controller to observe the new template' };
  const updated = st.updatedReplicas ?? 0;
  const replicas = st.replicas ?? 0;
  const available = st.availableReplicas ?? 0;
  if (updated < desired) return { done: false, message: `${updated} of ${plural(desired, 'pod')} run the current template` };
  if (replicas > updated) return { done: false, message: `${plural(replicas - updated, 'old pod')} still running` };
  if (available < updated) return { done: false, message: `${available} of ${updated} updated pods available (waiting for healthy pools)` };
  return { done: true, message: `all ${plural(desired, 'pod')} run the current template` };
}

function conditionsFor(o: Observation, spec: ResolvedSpec, counts: { ready: number; healthy: ReadonlyArray<ObservedPod>; unhealthy: ReadonlyArray<ObservedPod> }): NewCondition[] {
  const desired = spec.replicas;
  const maxUnavailable = resolveIntOrPercent(spec.remediation.maxUnavailable, desired);
  const minReady = desired === 0 ? 0 : Math.max(1, desired - maxUnavailable);
  const blocked = blockingProblem(o, spec);
  const rollout = rolloutState(o, desired);

  let available: NewCondition;
  if (desired === 0) available = { type: CONDITION_AVAILABLE, status: 'True', reason: 'ScaledToZero', message: 'spec.replicas is 0' };
  else if (counts.ready >= minReady) {
    available = { type: CONDITION_AVAILABLE, status: 'True', reason: 'MinimumReplicasAvailable', message: `${counts.ready} of ${plural(desired, 'pod')} ready (at least ${minReady} needed)` };
  } else {
    available = { type: CONDITION_AVAILABLE, status: 'False', reason: 'MinimumReplicasUnavailable', message: `${counts.ready} of ${plural(desired, 'pod')} ready, at least ${minReady} needed` };
  }

  let progressing: NewCondition;
  if (spec.paused) progressing = { type: CONDITION_PROGRESSING, status: 'False', reason: 'Paused', message: 'spec.paused is true: nothing is applied or remediated' };
  else if (blocked !== undefined && (o.deployment === undefined || o.secret.state !== 'ok')) {
    progressing = { type: CONDITION_PROGRESSING, status: 'False', reason: blocked.reason, message: `the rollout is blocked: ${blocked.message}` };
  } else if (rollout.stalled !== undefined) {
    progressing = { type: CONDITION_PROGRESSING, status: 'False', reason: 'ProgressDeadlineExceeded', message: rollout.stalled };
  } else if (!rollout.done) progressing = { type: CONDITION_PROGRESSING, status: 'True', reason: 'RolloutInProgress', message: rollout.message };
  else progressing = { type: CONDITION_PROGRESSING, status: 'False', reason: 'RolloutComplete', message: rollout.message };

  let degraded: NewCondition;
  if (blocked !== undefined) degraded = blocked;
  else if (o.degradedOverride !== undefined) degraded = o.degradedOverride;
  else if (rollout.stalled !== undefined) degraded = { type: CONDITION_DEGRADED, status: 'True', reason: 'ProgressDeadlineExceeded', message: rollout.stalled };
  else if (counts.unhealthy.length > 0) {
    degraded = {
      type: CONDITION_DEGRADED,
      status: 'True',
      reason: 'PodsUnhealthy',
      message: `${counts.unhealthy.length} of ${plural(counts.healthy.length + counts.unhealthy.length, 'pod')} report an unhealthy pool: ${listPods(counts.unhealthy)}`,
    };
  } else degraded = { type: CONDITION_DEGRADED, status: 'False', reason: 'AsExpected', message: `every owned object is as declared; ${counts.healthy.length} of ${plural(desired, 'pod')} healthy` };

  return [available, progressing, degraded];
}

/** Keeps lastTransitionTime when a condition's status did not change (metav1.Condition semantics). */
export function mergeConditions(previous: readonly Condition[] | undefined, next: readonly NewCondition[], generation: number | undefined, now: Date): Condition[] {
  const time = rfc3339(now);
  const merged: Condition[] = next.map((c) => {
    const before = previous?.find((p) => p.type === c.type);
    const lastTransitionTime = before !== undefined && before.status === c.status ? before.lastTransitionTime : time;
    return { type: c.type, status: c.status, ...(generation === undefined ? {} : { observedGeneration: generation }), lastTransitionTime, reason: c.reason, message: c.message };
  });
  return merged;
}

/**
 * The status of an ArcDeployment, rebuilt from what is observed. Only the remediation history
 * (status.remediations, lastRemediationTime) is carried over, since it records what happened
 * rather than what is; conditions keep their lastTransitionTime while their status holds.
 */
export function computeStatus(o: Observation, now: Date): ArcDeploymentStatus {
  const spec = resolveSpec(o.arcd.spec);
  const live = o.pods.filter(isLivePod);
  const healthy = live.filter((p) => poolCondition(p)?.status === 'True');
  const unhealthy = live.filter((p) => poolCondition(p)?.status === 'False');
  const st = o.deployment?.status ?? {};
  // Ready pods counted from the pods themselves: the Deployment's readyReplicas follows them only
  // after the ReplicaSet and Deployment controllers have written their status, which in a busy
  // cluster (their client is rate-limited) can be many seconds later.
  const ready = live.filter(isReadyPod).length;
  const generation = o.arcd.metadata.generation;
  const previous = o.arcd.status;
  const status: ArcDeploymentStatus = {
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    replicas: st.replicas ?? 0,
    readyReplicas: ready,
    availableReplicas: st.availableReplicas ?? 0,
    updatedReplicas: st.updatedReplicas ?? 0,
    healthyReplicas: healthy.length,
    selector: selectorString(o.arcd.metadata.name),
    conditions: mergeConditions(
      previous?.conditions,
      [...conditionsFor(o, spec, { ready, healthy, unhealthy }), ...(o.extraConditions ?? [])],
      generation,
      now,
    ),
  };
  if (previous?.remediations !== undefined) status.remediations = previous.remediations.map((r) => ({ ...r }));
  if (previous?.lastRemediationTime !== undefined) status.lastRemediationTime = previous.lastRemediationTime;
  if (previous?.remediationState !== undefined) status.remediationState = structuredClone(previous.remediationState);
  return status;
}
