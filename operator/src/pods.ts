// What a pod says, as the operator reads it: its arcops.dev/PoolHealthy condition (read here and
// nowhere else), whether it is live, ready or going, and the image of its service container.
// Pure.
import { POOL_HEALTHY_CONDITION } from '@arcops/common';
import { SERVICE_CONTAINER } from './spec.ts';
import type { ObservedPod, PodCondition } from './types.ts';

export function podName(pod: ObservedPod): string {
  return pod.metadata?.name ?? '?';
}

/** The condition the sidecar writes (architecture.md, "API group and names"), if any. */
export function poolCondition(pod: ObservedPod): PodCondition | undefined {
  return pod.status?.conditions?.find((c) => c.type === POOL_HEALTHY_CONDITION);
}

/** The pod's Ready condition is True (the kubelet folds the readiness gates into it). */
export function isReady(pod: ObservedPod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
}

/** Not being deleted and not finished. */
export function isLive(pod: ObservedPod): boolean {
  return pod.metadata?.deletionTimestamp === undefined && pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed';
}

/** Not live, or evicted by this process (`evicting`) though the cache does not show it yet. */
export function isGoing(pod: ObservedPod, evicting: ReadonlySet<string>): boolean {
  return !isLive(pod) || evicting.has(podName(pod));
}

export function serviceImage(pod: ObservedPod): string | undefined {
  return pod.spec?.containers?.find((c) => c.name === SERVICE_CONTAINER)?.image;
}
