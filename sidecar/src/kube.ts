/**
 * The Kubernetes side of the pod condition, through @kubernetes/client-node. Loaded only when
 * POD_NAME and POD_NAMESPACE are set (the client weighs tens of MB of RSS).
 */
import { POOL_HEALTHY_CONDITION } from '@arcops/common';
import {
  CoreV1Api,
  KubeConfig,
  Observable,
  type ObservableMiddleware,
  PatchStrategy,
  setHeaderOptions,
  type V1PodCondition,
} from '@kubernetes/client-node';
import type { PodConditionApi } from './condition.ts';
import { FIELD_MANAGER } from './field-manager.ts';

export { FIELD_MANAGER } from './field-manager.ts';

/** KUBECONFIG when given, else the pod's in-cluster ServiceAccount credentials. */
export function loadKubeConfig(kubeconfigPath: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath !== undefined) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromCluster();
  return kc;
}

function iso(v: Date | string | null | undefined): string | undefined {
  if (v === null || v === undefined) return undefined;
  return v instanceof Date ? v.toISOString() : v;
}

function timeout(ms: number): ObservableMiddleware {
  return {
    pre: (ctx) => {
      ctx.setSignal(AbortSignal.timeout(ms));
      return new Observable(Promise.resolve(ctx));
    },
    post: (res) => new Observable(Promise.resolve(res)),
  };
}

/** GET the pod (verb get on pods) and PATCH pods/status with a strategic merge patch. */
export function kubePodConditionApi(kc: KubeConfig, namespace: string, name: string, requestTimeoutMs = 10_000): PodConditionApi {
  const core = kc.makeApiClient(CoreV1Api);
  const options = { middleware: [timeout(requestTimeoutMs)], middlewareMergeStrategy: 'append' as const };
  return {
    target: `${namespace}/${name}`,
    async read() {
      const pod = await core.readNamespacedPod({ name, namespace }, options);
      const c: V1PodCondition | undefined = pod.status?.conditions?.find((x) => x.type === POOL_HEALTHY_CONDITION);
      if (c === undefined) return undefined;
      return {
        type: c.type,
        status: c.status === 'True' ? 'True' : 'False',
        reason: c.reason ?? '',
        message: c.message ?? '',
        lastTransitionTime: iso(c.lastTransitionTime) ?? new Date(0).toISOString(),
        lastProbeTime: iso(c.lastProbeTime) ?? null,
      };
    },
    async patch(condition) {
      // Strategic merge: pod conditions merge by `type`, so only this entry is replaced.
      await core.patchNamespacedPodStatus(
        { name, namespace, fieldManager: FIELD_MANAGER, body: { status: { conditions: [condition] } } },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch, options),
      );
    },
  };
}
