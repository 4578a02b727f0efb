// The objects an ArcDeployment should own, built from its resolved spec: the sidecar's
// ServiceAccount and RoleBinding, the data claim, the Service, the PodDisruptionBudget and the
// Deployment. Pure: no I/O, no clock, inputs never mutated. Golden files of the objects built
// from deploy/samples: test/operator/golden/.
import { POOL_HEALTHY_CONDITION } from '@arcops/common';
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
import { shortHash } from './hash.ts';
import { commonLabels, ownedNames, ownerReference, selectorLabels } from './names.ts';
import type { OwnedNames } from './names.ts';
import {
  RUN_AS_USER,
  SA_TOKEN_DIR,
  SERVICE_CONTAINER,
  SERVICE_PORT,
  SIDECAR_CLUSTER_ROLE,
  SIDECAR_CONTAINER,
  SIDECAR_PORT,
  THREADPOOL_HEADROOM,
  DUCKDB_TEMP_LIMIT_MIB,
  TMP_HEADROOM_MIB,
  TOKEN_DIR,
  TOKEN_FILE,
  resolveSpec,
} from './spec.ts';
import type { ResolvedSpec } from './spec.ts';
import { ANNOTATION_CONFIG_HASH } from './types.ts';
import type { ArcDeployment, ObjectMeta } from './types.ts';

function meta(arcd: ArcDeployment, name: string, component: string): ObjectMeta & { name: string; namespace: string } {
  return {
    name,
    namespace: arcd.metadata.namespace,
    labels: commonLabels(arcd.metadata.name, component),
    ownerReferences: [ownerReference(arcd)],
  };
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
      // A number, never the percentage: the API server would round "90%" of 3 pods up to 3.
      maxUnavailable: spec.remediation.maxUnavailablePods,
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
