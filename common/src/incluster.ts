// In-cluster credentials as a pod receives them: the API server's address in
// KUBERNETES_SERVICE_HOST/PORT and the ServiceAccount volume (token + cluster CA). Plain files
// and node:https, no Kubernetes client library: the operator and the sidecar both talk to the
// API server this way in a pod, and what they load is memory every replica pays for.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where the kubelet mounts a pod's ServiceAccount token and CA. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface InClusterSettings {
  host: string;
  port: number;
  /** Folder holding `token` and `ca.crt` (the ServiceAccount volume). */
  serviceAccountDir: string;
}

export interface InClusterCredentials {
  /** `https://host:port` (an IPv6 host in brackets). */
  readonly server: string;
  readonly host: string;
  readonly port: number;
  /** The cluster CA, read once. */
  readonly ca: Buffer;
  /** TLS server name: the host unless it is an IP address (SNI takes no addresses). */
  readonly servername: string | undefined;
  /** The current token, read from disk on every call: projected tokens are rotated in place. */
  token(): string;
}

function isIpAddress(host: string): boolean {
  return host.includes(':') || /^\d+\.\d+\.\d+\.\d+$/.test(host);
}

/** Reads the CA now (a missing ServiceAccount volume fails here, at boot); the token on use. */
export function inClusterCredentials(s: InClusterSettings): InClusterCredentials {
  const ca = readFileSync(join(s.serviceAccountDir, 'ca.crt'));
  const tokenFile = join(s.serviceAccountDir, 'token');
  return {
    server: `https://${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`,
    host: s.host,
    port: s.port,
    ca,
    servername: isIpAddress(s.host) ? undefined : s.host,
    token: () => readFileSync(tokenFile, 'utf8').trim(),
  };
}
