/**
 * The pod condition's two API calls with the pod's own ServiceAccount, over node:https: no
 * Kubernetes client library, because in a pod the sidecar's memory is what every replica
 * pays for (client-node loads tens of MB of generated models). Used when there is no
 * KUBECONFIG; kube.ts (client-node) serves KUBECONFIG-based runs.
 */
import { apiError, apiServerRequest, inClusterCredentials, POOL_HEALTHY_CONDITION } from '@arcops/common';
import type { InClusterSettings as Credentials } from '@arcops/common';
import type { PodConditionApi, PoolCondition } from './condition.ts';
import { FIELD_MANAGER } from './field-manager.ts';

export interface InClusterSettings extends Credentials {
  requestTimeoutMs?: number;
}

interface RawCondition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastProbeTime?: string | null;
}

export function inClusterPodConditionApi(s: InClusterSettings, namespace: string, name: string): PodConditionApi {
  const creds = inClusterCredentials(s);
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`;

  /** One API call (@arcops/common's apiServerRequest): the parsed answer, or a KubeApiError. */
  const call = async (method: 'GET' | 'PATCH', url: string, body?: unknown): Promise<unknown> => {
    // The token is read for every call: projected ServiceAccount tokens are rotated on disk.
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const res = await apiServerRequest({
      url: new URL(creds.server + url),
      options: {
        method,
        ca: creds.ca,
        ...(creds.servername === undefined ? {} : { servername: creds.servername }),
        headers: {
          authorization: `Bearer ${creds.token()}`,
          accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': 'application/strategic-merge-patch+json', 'content-length': Buffer.byteLength(payload) }),
        },
      },
      body: payload,
      timeoutMs: s.requestTimeoutMs ?? 10_000,
      label: `${method} ${url}`,
    });
    if (res.status < 200 || res.status > 299) throw apiError(method, url, res.status, res.headers, res.body);
    try {
      return JSON.parse(res.body) as unknown;
    } catch {
      return res.body;
    }
  };

  return {
    target: `${namespace}/${name}`,
    async read() {
      const pod = (await call('GET', path)) as { status?: { conditions?: RawCondition[] } };
      const c = pod.status?.conditions?.find((x) => x.type === POOL_HEALTHY_CONDITION);
      if (c === undefined) return undefined;
      return {
        type: POOL_HEALTHY_CONDITION,
        status: c.status === 'True' ? 'True' : 'False',
        reason: c.reason ?? '',
        message: c.message ?? '',
        lastTransitionTime: c.lastTransitionTime ?? new Date(0).toISOString(),
        lastProbeTime: c.lastProbeTime ?? null,
      } satisfies PoolCondition;
    },
    async patch(condition) {
      // Strategic merge: pod conditions merge by `type`, so only this entry is replaced.
      await call('PATCH', `${path}/status?fieldManager=${FIELD_MANAGER}`, { status: { conditions: [condition] } });
    },
  };
}
