/**
 * The pod condition's two API calls with the pod's own ServiceAccount, over node:https: no
 * Kubernetes client library, because in a pod the sidecar's memory is what every replica
 * pays for (client-node loads tens of MB of generated models). Used when there is no
 * KUBECONFIG; kube.ts (client-node) serves KUBECONFIG-based runs.
 */
import { request } from 'node:https';
import { inClusterCredentials, POOL_HEALTHY_CONDITION } from '@arcops/common';
import type { InClusterSettings as Credentials } from '@arcops/common';
import type { PodConditionApi, PoolCondition } from './condition.ts';
import { FIELD_MANAGER } from './field-manager.ts';

export interface InClusterSettings extends Credentials {
  requestTimeoutMs?: number;
}

/** A failed API call: `code` is the HTTP status, as the condition writer expects. */
export class KubeApiError extends Error {
  readonly code: number;
  readonly body: unknown;
  constructor(code: number, body: unknown) {
    const message = typeof body === 'object' && body !== null && 'message' in body ? String((body).message) : `HTTP ${code}`;
    super(message);
    this.name = 'KubeApiError';
    this.code = code;
    this.body = body;
  }
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

  const call = (method: 'GET' | 'PATCH', url: string, body?: unknown): Promise<unknown> =>
    new Promise((resolve, reject) => {
      // The token is read for every call: projected ServiceAccount tokens are rotated on disk.
      const token = creds.token();
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          host: s.host,
          port: s.port,
          path: url,
          method,
          ca: creds.ca,
          servername: creds.servername,
          timeout: s.requestTimeoutMs ?? 10_000,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            ...(payload === undefined ? {} : { 'content-type': 'application/strategic-merge-patch+json', 'content-length': Buffer.byteLength(payload) }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              /* not JSON */
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(parsed);
            else reject(new KubeApiError(status, parsed));
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`request to ${creds.server} timed out`)));
      req.on('error', reject);
      req.end(payload);
    });

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
