// The ArcDeployment custom resource as TypeScript sees it, the names the operator stamps on what
// it owns, and the few shapes of observed Kubernetes objects the operator reads. Observed objects
// are raw API JSON (timestamps are RFC 3339 strings), never client-node class instances.

export const GROUP = 'arcops.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'ArcDeployment';

/** The server-side apply field manager (architecture.md). */
export const FIELD_MANAGER = 'arc-operator';
export const MANAGED_BY = 'arc-operator';

export const LABEL_NAME = 'app.kubernetes.io/name';
export const LABEL_INSTANCE = 'app.kubernetes.io/instance';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const LABEL_PART_OF = 'app.kubernetes.io/part-of';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
/** Value of app.kubernetes.io/name on everything an ArcDeployment owns. */
export const APP_NAME = 'arc';

/** Pod-template annotation: hash of what the pods are built from (spec and token content). */
export const ANNOTATION_CONFIG_HASH = 'arcops.dev/config-hash';

// ---- ArcDeployment -------------------------------------------------------------------------

export type IntOrString = number | string;

export interface ResourceRequirements {
  limits?: Record<string, IntOrString>;
  requests?: Record<string, IntOrString>;
}

export interface PoolSpec {
  size?: number;
  waitTimeoutSeconds?: number;
  maxQueue?: number;
  largeResultRows?: number;
  queryTimeoutSeconds?: number;
  memoryLimit?: string;
  threads?: number;
}

export interface ProbeSpec {
  intervalSeconds?: number;
  timeoutSeconds?: number;
  canaryTimeoutSeconds?: number;
  exhaustedSeconds?: number;
  exhaustedCanaryFailures?: number;
  pendingTimeoutsMaxCount?: number;
  pendingTimeoutsWindowSeconds?: number;
  oldestWaitMaxSeconds?: number;
  capacityLostSeconds?: number;
  unreachableSeconds?: number;
  recoverySeconds?: number;
  scanIntervalSeconds?: number;
  scanRoots?: string[];
}

export type RemediationMode = 'Auto' | 'DryRun' | 'Off';

export interface RemediationSpec {
  mode?: RemediationMode;
  unhealthySeconds?: number;
  maxUnavailable?: IntOrString;
  cooldownSeconds?: number;
  maxPerHour?: number;
  stormThreshold?: IntOrString;
  stormCooldownSeconds?: number;
  rollbackOnImageFault?: boolean;
}

export interface PersistentVolumeClaimTemplate {
  storageClassName?: string;
  size: string;
  accessModes?: string[];
}

export interface DataSpec {
  existingClaim?: string;
  persistentVolumeClaim?: PersistentVolumeClaimTemplate;
  mountPath?: string;
}

export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  tolerationSeconds?: number;
}

export interface ArcDeploymentSpec {
  replicas?: number;
  image: string;
  sidecarImage: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  imagePullSecrets?: { name: string }[];
  logLevel?: string;
  resources?: { service?: ResourceRequirements; sidecar?: ResourceRequirements };
  pool?: PoolSpec;
  apiTokenSecretRef: { name: string; key?: string };
  data?: DataSpec;
  probe?: ProbeSpec;
  forbiddenModules?: string[];
  remediation?: RemediationSpec;
  paused?: boolean;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  affinity?: Record<string, unknown>;
  topologySpreadConstraints?: Record<string, unknown>[];
  podLabels?: Record<string, string>;
  podAnnotations?: Record<string, string>;
  priorityClassName?: string;
}

/** metav1.Condition. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

/** One entry of status.remediations (written by remediation, issue 6). */
export interface RemediationRecord {
  time: string;
  action: string;
  pod?: string;
  reason?: string;
  result?: string;
  message?: string;
}

/** Remediation state kept in status so that a restarted or new leader carries on (issue 6). */
export interface RemediationState {
  /** Evictions in the last hour (the maxPerHour window). */
  evictionTimes?: string[];
  /** A storm began (more unhealthy pods than stormThreshold); cleared at stormClearedTime. */
  stormSince?: string;
  stormClearedTime?: string;
  /** The current spec.image carries a forbidden file (seen in a fresh pod). */
  imageFault?: { image: string; file: string; pod: string; since: string };
  /** The last service image that ran healthy on every pod. */
  lastHealthyImage?: string;
  /** The image the Deployment was rolled back to because of imageFault. */
  rolledBackTo?: string;
}

export interface ArcDeploymentStatus {
  observedGeneration?: number;
  replicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  updatedReplicas?: number;
  healthyReplicas?: number;
  selector?: string;
  conditions?: Condition[];
  remediations?: RemediationRecord[];
  lastRemediationTime?: string;
  remediationState?: RemediationState;
}

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  managedFields?: ManagedFieldsEntry[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  apiVersion?: string;
  time?: string;
  fieldsType?: string;
  fieldsV1?: Record<string, unknown>;
  subresource?: string;
}

/** Any object of the Kubernetes API, as JSON. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [field: string]: unknown;
}

export interface ArcDeployment extends KubeObject {
  metadata: ObjectMeta & { name: string; namespace: string };
  spec: ArcDeploymentSpec;
  status?: ArcDeploymentStatus;
}

// ---- observed objects (only the fields the operator reads) ---------------------------------

export interface ObservedDeployment extends KubeObject {
  spec?: { replicas?: number };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    updatedReplicas?: number;
    unavailableReplicas?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

export interface PodCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface ObservedPod extends KubeObject {
  spec?: { nodeName?: string; containers?: { name: string; image?: string }[] };
  status?: { phase?: string; startTime?: string; conditions?: PodCondition[] };
}

export interface ObservedSecret extends KubeObject {
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

/** `namespace/name`, the work queue's key for an ArcDeployment. */
export function objectKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
