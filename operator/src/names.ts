// The names, labels, selector and owner reference of what an ArcDeployment owns. Pure.
import { API_VERSION, APP_NAME, KIND, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME, LABEL_PART_OF, MANAGED_BY } from './types.ts';
import type { ArcDeployment, OwnerReference } from './types.ts';

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
