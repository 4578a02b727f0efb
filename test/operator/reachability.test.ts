// operator/src/reachability.ts: an HTTP answer of any status means the API server is reachable; a
// request that fails without one means it is not; a request the caller aborted says nothing.
import { describe, expect, it } from 'vitest';
import { KubeApiError } from '../../operator/src/errors.ts';
import { RESOURCES } from '../../operator/src/kube.ts';
import type { KubeClient } from '../../operator/src/kube.ts';
import { Reachability } from '../../operator/src/reachability.ts';

function clientThat(outcome: () => Promise<never> | Promise<undefined>): KubeClient {
  const any = (): Promise<never> => outcome() as Promise<never>;
  return { get: any, list: any, watch: any, create: any, replace: any, patch: any, delete: any, apply: any, evict: any };
}

describe('Reachability', () => {
  it('is unknown before any request ends, then follows the last outcome', async () => {
    const r = new Reachability();
    let next: () => Promise<never> | Promise<undefined> = () => Promise.resolve(undefined);
    const client = r.wrap(clientThat(() => next()));
    expect(r.reachable).toBeUndefined();

    await client.get(RESOURCES.pod, 'ns', 'p');
    expect(r.reachable).toBe(true);

    next = () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6443'));
    await expect(client.get(RESOURCES.pod, 'ns', 'p')).rejects.toThrow(/ECONNREFUSED/);
    expect(r.reachable).toBe(false);

    next = () => Promise.reject(new KubeApiError(404, 'NotFound', 'not found', { method: 'GET', path: '/x' }));
    await expect(client.evict('ns', 'p')).rejects.toThrow(/not found/);
    expect(r.reachable).toBe(true);
  });

  it('takes a watch event as an answer, and ignores a watch the caller aborted', async () => {
    const r = new Reachability();
    const controller = new AbortController();
    const inner = {
      watch: (_res: unknown, _o: unknown, onEvent: (e: unknown) => void) => {
        onEvent({ type: 'ADDED', object: {} });
        controller.abort(new Error('stopped'));
        return Promise.reject(new Error('stopped'));
      },
    } as unknown as KubeClient;
    const client = r.wrap(inner);
    await expect(client.watch(RESOURCES.pod, { resourceVersion: '1', timeoutSeconds: 5, signal: controller.signal }, () => undefined)).rejects.toThrow('stopped');
    expect(r.reachable).toBe(true);
  });
});
