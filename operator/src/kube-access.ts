// Where the API server is and how a request proves who sends it: in a pod the ServiceAccount
// token and CA (plain files, no client library: ADR 0009), otherwise client-node's KubeConfig
// (kubeconfig file, exec plugins), loaded only then.
import type { RequestOptions } from 'node:https';
import { KubeTransportError } from '@arcops/common';
import type { InClusterCredentials } from '@arcops/common';
import type { KubeConfig } from '@kubernetes/client-node';

/** Where the API server is and how a request proves who sends it. */
export interface KubeAccess {
  /** Base URL of the API server. */
  server(): string;
  /** Adds the TLS material (CA, client certificate) and the credentials to one request. */
  authorize(options: RequestOptions): Promise<void>;
  /** True when requests go through a proxy: no shared keep-alive agent then. */
  proxied(): boolean;
}

/** A pod's own ServiceAccount: the token (re-read on every request, it is rotated) and CA. */
export function inClusterAccess(creds: InClusterCredentials): KubeAccess {
  return {
    server: () => creds.server,
    authorize: (options) => {
      options.ca = creds.ca;
      if (creds.servername !== undefined) options.servername = creds.servername;
      options.headers = { ...(options.headers as Record<string, string>), authorization: `Bearer ${creds.token()}` };
      return Promise.resolve();
    },
    proxied: () => false,
  };
}

/** The current context of a client-node KubeConfig (bearer token, client certificate, exec plugin). */
export function kubeConfigAccess(kc: KubeConfig): KubeAccess {
  const cluster = (): NonNullable<ReturnType<KubeConfig['getCurrentCluster']>> => {
    const c = kc.getCurrentCluster();
    if (!c) throw new KubeTransportError('the kubeconfig has no current cluster');
    return c;
  };
  return {
    server: () => cluster().server,
    authorize: (options) => kc.applyToHTTPSOptions(options),
    proxied: () => Boolean(cluster().proxyUrl),
  };
}

/**
 * Access from a kubeconfig file (or, with no path, client-node's default lookup). client-node is
 * imported here and only here, so a pod using its ServiceAccount never loads it.
 */
export async function loadKubeConfigAccess(path: string | undefined): Promise<KubeAccess> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (path !== undefined) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kubeConfigAccess(kc);
}

export function isKubeConfig(x: KubeAccess | KubeConfig): x is KubeConfig {
  return typeof (x as Partial<KubeConfig>).applyToHTTPSOptions === 'function';
}
