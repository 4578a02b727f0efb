// Caches of the ArcDeployments, of what they own and of their pods, each kept current by a
// Reflector (reflector.ts). Event handlers only turn objects into ArcDeployment keys for the
// work queue. Each object is trimmed to what the controller reads before it is stored (trim.ts).
import type { Clock } from '@arcops/common';
import type { Logger } from 'pino';
import { stableStringify } from './hash.ts';
import { RESOURCES } from './kube.ts';
import type { KubeClient, ResourceType } from './kube.ts';
import { Reflector } from './reflector.ts';
import type { ReflectorOptions, RestartReason } from './reflector.ts';
import { trimArcDeployment, trimOwned, trimPod } from './trim.ts';
import { GROUP, KIND, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME, APP_NAME, MANAGED_BY, objectKey } from './types.ts';
import type { ArcDeployment, KubeObject, ObservedPod } from './types.ts';

/** The kinds an ArcDeployment owns, watched with the managed-by label. */
export const OWNED_RESOURCES: readonly ResourceType[] = [
  RESOURCES.deployment,
  RESOURCES.service,
  RESOURCES.serviceAccount,
  RESOURCES.roleBinding,
  RESOURCES.podDisruptionBudget,
  RESOURCES.persistentVolumeClaim,
];

export const MANAGED_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;

/** The ArcDeployment key an object belongs to, if any. */
export function ownerKey(obj: KubeObject): string | undefined {
  const namespace = obj.metadata?.namespace;
  if (!namespace) return undefined;
  if (obj.kind === KIND) return objectKey(namespace, obj.metadata?.name ?? '');
  const owner = obj.metadata?.ownerReferences?.find((r) => r.controller === true && r.kind === KIND && r.apiVersion.startsWith(`${GROUP}/`));
  if (owner) return objectKey(namespace, owner.name);
  const labels = obj.metadata?.labels;
  if (obj.kind === 'Pod' && labels?.[LABEL_NAME] === APP_NAME && labels[LABEL_INSTANCE]) return objectKey(namespace, labels[LABEL_INSTANCE]);
  return undefined;
}

/**
 * True when an ArcDeployment changed only in what a reconcile does not act on: its status (and
 * so its resourceVersion and managedFields). A spec change moves `generation`; labels,
 * annotations, owner references, finalizers and deletion are compared as well.
 */
export function onlyStatusChanged(before: KubeObject, after: KubeObject): boolean {
  const a = before.metadata ?? {};
  const b = after.metadata ?? {};
  return (
    a.uid === b.uid &&
    a.generation === b.generation &&
    a.deletionTimestamp === b.deletionTimestamp &&
    stableStringify(a.labels ?? {}) === stableStringify(b.labels ?? {}) &&
    stableStringify(a.annotations ?? {}) === stableStringify(b.annotations ?? {}) &&
    stableStringify(a.finalizers ?? []) === stableStringify(b.finalizers ?? []) &&
    stableStringify(a.ownerReferences ?? []) === stableStringify(b.ownerReferences ?? [])
  );
}

export interface InformersOptions {
  client: KubeClient;
  clock: Clock;
  logger: Logger;
  /** Namespaces to watch; empty = all. */
  namespaces: readonly string[];
  watchTimeoutMs: number;
  /** Receives the key of the ArcDeployment an observed change concerns. */
  /** An object changed; `key` is its ArcDeployment, `kind` the kind of the object that changed. */
  onKey: (key: string, kind: string) => void;
  onRestart?: (resource: string, reason: RestartReason) => void;
  /** Test knobs passed to each Reflector. */
  reflector?: Partial<Pick<ReflectorOptions, 'silenceGraceMs' | 'watchdogIntervalMs' | 'retryBaseMs' | 'retryMaxMs' | 'random' | 'listPageSize'>>;
}

/** A pod of an ArcDeployment is filed under `namespace/instance`. */
function podInstanceKey(pod: KubeObject): string | undefined {
  const labels = pod.metadata?.labels;
  if (labels?.[LABEL_NAME] !== APP_NAME || !labels[LABEL_INSTANCE]) return undefined;
  return objectKey(pod.metadata?.namespace ?? '', labels[LABEL_INSTANCE]);
}

/** Every Reflector the operator runs, and lookups into their caches. */
export class Informers {
  private readonly reflectors = new Map<string, Map<string, Reflector>>();
  private allSynced = false;
  private readonly allNamespaces: boolean;

  constructor(options: InformersOptions) {
    this.allNamespaces = options.namespaces.length === 0;
    const namespaces = this.allNamespaces ? [''] : options.namespaces;
    const kinds: { res: ResourceType; selector?: string; transform: (o: KubeObject) => KubeObject; indexBy?: (o: KubeObject) => string | undefined }[] = [
      { res: RESOURCES.arcDeployment, transform: trimArcDeployment },
      ...OWNED_RESOURCES.map((res) => ({ res, selector: MANAGED_SELECTOR, transform: (o: KubeObject) => trimOwned(o) })),
      { res: RESOURCES.pod, selector: MANAGED_SELECTOR, transform: trimPod, indexBy: podInstanceKey },
    ];
    for (const { res, selector, transform, indexBy } of kinds) {
      const byNamespace = new Map<string, Reflector>();
      for (const namespace of namespaces) {
        byNamespace.set(
          namespace,
          new Reflector({
            ...options.reflector,
            client: options.client,
            resource: res,
            namespace,
            ...(selector === undefined ? {} : { labelSelector: selector }),
            clock: options.clock,
            logger: options.logger,
            watchTimeoutMs: options.watchTimeoutMs,
            transform,
            ...(indexBy === undefined ? {} : { indexBy }),
            onChange: (type, obj, previous) => {
              // The operator's own status writes come back as updates of the ArcDeployment:
              // nothing in them asks for a pass (controller-runtime's GenerationChanged filter).
              if (res === RESOURCES.arcDeployment && type === 'update' && previous !== undefined && onlyStatusChanged(previous, obj)) return;
              const key = ownerKey({ ...obj, kind: obj.kind ?? res.kind });
              if (key !== undefined) options.onKey(key, res.kind);
            },
            onRestart: (reason) => options.onRestart?.(res.plural, reason),
          }),
        );
      }
      this.reflectors.set(res.kind, byNamespace);
    }
  }

  start(): void {
    for (const byNs of this.reflectors.values()) for (const r of byNs.values()) r.start();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.reflectors.values()].flatMap((byNs) => [...byNs.values()].map((r) => r.stop())));
  }

  /** Once every cache is filled; it stays so (a reflector never unfills). Asked on every event. */
  get hasSynced(): boolean {
    this.allSynced ||= [...this.reflectors.values()].every((byNs) => [...byNs.values()].every((r) => r.hasSynced));
    return this.allSynced;
  }

  /** All reflectors (for watch statistics). */
  all(): Reflector[] {
    return [...this.reflectors.values()].flatMap((byNs) => [...byNs.values()]);
  }

  private reflector(kind: string, namespace: string): Reflector | undefined {
    return this.reflectors.get(kind)?.get(this.allNamespaces ? '' : namespace);
  }

  get(kind: string, namespace: string, name: string): KubeObject | undefined {
    return this.reflector(kind, namespace)?.get(namespace, name);
  }

  arcDeployment(namespace: string, name: string): ArcDeployment | undefined {
    return this.get(KIND, namespace, name) as ArcDeployment | undefined;
  }

  arcDeploymentKeys(): string[] {
    return [...(this.reflectors.get(KIND)?.values() ?? [])].flatMap((r) => r.list().map((o) => objectKey(o.metadata?.namespace ?? '', o.metadata?.name ?? '')));
  }

  /** Pods of an ArcDeployment (by its selector labels). */
  /** The pods of one ArcDeployment (by the instance label), from an index: no scan of every pod. */
  pods(namespace: string, instance: string): ObservedPod[] {
    return this.reflector('Pod', namespace)?.byIndex(objectKey(namespace, instance)) ?? [];
  }
}
