// Helpers for cluster-tier test files: a KubeConfig for the local control plane, a namespace of
// the test file's own (created in beforeAll, deleted in afterAll) and a polling helper.
//
//   const ns = useTestNamespace('pool');
//   it('...', async () => {
//     const core = ns.kc.makeApiClient(CoreV1Api);
//     await core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: 'x' } } });
//   });
import { randomBytes } from 'node:crypto';
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, inject } from 'vitest';

/** Label put on every namespace made by useTestNamespace (handy to clean up after a crash). */
export const TEST_NAMESPACE_LABEL = 'arcops.dev/test-namespace';

/** Path of the admin kubeconfig of the local control plane (provided by global-setup.ts). */
export function kubeconfigPath(): string {
  const path = inject('kubeconfig');
  if (!path) {
    throw new Error('no kubeconfig was provided: run this file in the vitest "cluster" project (test/cluster/vitest.project.ts)');
  }
  return path;
}

/** A fresh KubeConfig for the local control plane, as cluster-admin. */
export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath());
  return kc;
}

/** A valid, unique namespace name: `<prefix>-<random>` (DNS-1123 label, at most 63 characters). */
export function uniqueNamespaceName(prefix: string): string {
  const clean =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40) || 'test';
  return `${clean}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export interface TestNamespace {
  /** The namespace's name (available from beforeAll on). */
  readonly name: string;
  /** A cluster-admin KubeConfig whose current context uses this namespace. */
  readonly kc: KubeConfig;
}

/**
 * Registers beforeAll/afterAll hooks that create a unique namespace for the calling test file
 * and delete it afterwards (set ARC_CLUSTER_KEEP_NAMESPACES=1 to keep it for a look). beforeAll
 * returns once the namespace's default ServiceAccount exists, so pods can be created at once.
 */
export function useTestNamespace(prefix = 'arc-test'): TestNamespace {
  let name: string | undefined;
  let kc: KubeConfig | undefined;

  beforeAll(async () => {
    kc = loadKubeConfig();
    const wanted = uniqueNamespaceName(prefix);
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: wanted, labels: { [TEST_NAMESPACE_LABEL]: 'true' } } } });
    const context = kc.getContextObject(kc.getCurrentContext());
    if (context) {
      kc.contexts = kc.contexts.map((c) => (c.name === context.name ? { ...c, namespace: wanted } : c));
    }
    name = wanted;
    // Pods are only admitted once the namespace's default ServiceAccount exists.
    await eventually(`the default ServiceAccount in ${wanted}`, () =>
      core.readNamespacedServiceAccount({ name: 'default', namespace: wanted }),
    );
  });

  afterAll(async () => {
    if (!name || !kc) return;
    if (process.env['ARC_CLUSTER_KEEP_NAMESPACES'] === '1') return;
    await kc.makeApiClient(CoreV1Api).deleteNamespace({ name, propagationPolicy: 'Background' });
  });

  return {
    get name(): string {
      if (!name) throw new Error('the test namespace exists only from beforeAll on');
      return name;
    },
    get kc(): KubeConfig {
      if (!kc) throw new Error('the test namespace exists only from beforeAll on');
      return kc;
    },
  };
}

/**
 * Polls `probe` until it returns a value other than undefined/null/false (which it then returns) or
 * throws the last error / a timeout error naming `what`.
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  { timeoutMs = 60_000, intervalMs = 250 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const reason = lastError instanceof Error ? `: last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${reason}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Awaits a call the API server must refuse; its HTTP code and message (what kubectl would print). */
export async function refusal(call: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await call;
  } catch (error) {
    if (error instanceof ApiException) {
      const body: unknown = error.body;
      const raw = typeof body === 'string' ? body : JSON.stringify(body);
      try {
        const status = JSON.parse(raw) as { message?: unknown };
        if (typeof status.message === 'string') return { code: error.code, message: status.message };
      } catch {
        // not JSON
      }
      return { code: error.code, message: raw };
    }
    throw error;
  }
  throw new Error('the API server accepted what it should have refused');
}
