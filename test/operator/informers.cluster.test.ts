// The Reflector against the real API server: a list in pages follows the server's continue
// tokens to the last page, fills the cache with every object, and the watch then starts from
// the list's resourceVersion.
import { CoreV1Api } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Reflector } from '../../operator/src/reflector.ts';
import { HttpKubeClient, RESOURCES } from '../../operator/src/kube.ts';
import type { KubeClient, ListPageOptions } from '../../operator/src/kube.ts';
import { systemClock } from '@arcops/common';
import { eventually, useTestNamespace } from '../cluster/namespace.ts';
import { silentLogger } from './fixtures.ts';

const ns = useTestNamespace('operator-informers');

describe('Reflector against the API server', () => {
  it('lists in pages of the given size to the last page, then watches from that list', async () => {
    const core = ns.kc.makeApiClient(CoreV1Api);
    for (let i = 0; i < 4; i++) await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: `sa-${i}` } } });
    const http = new HttpKubeClient(ns.kc, { userAgent: 'arc-operator-test/informers' });
    const pages: { continued: boolean; items: number; more: boolean }[] = [];
    const client: KubeClient = Object.create(http) as KubeClient;
    client.list = async (res, options?: ListPageOptions) => {
      const page = await http.list(res, options);
      pages.push({ continued: options?.continue !== undefined, items: page.items.length, more: page.continue !== undefined });
      return page as never;
    };
    const seen: string[] = [];
    const reflector = new Reflector({
      client,
      resource: RESOURCES.serviceAccount,
      namespace: ns.name,
      clock: systemClock,
      logger: silentLogger,
      watchTimeoutMs: 30_000,
      listPageSize: 2,
      onChange: (type, obj) => seen.push(`${type}:${obj.metadata?.name}`),
    });
    reflector.start();
    try {
      await eventually('the first list', () => reflector.hasSynced);
      // default + sa-0..3: five ServiceAccounts in pages of 2, 2 and 1.
      expect(pages).toEqual([
        { continued: false, items: 2, more: true },
        { continued: true, items: 2, more: true },
        { continued: true, items: 1, more: false },
      ]);
      expect(reflector.list().map((o) => o.metadata?.name).sort()).toEqual(['default', 'sa-0', 'sa-1', 'sa-2', 'sa-3']);
      await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'sa-late' } } });
      await eventually('the watch to deliver a later object', () => reflector.get(ns.name, 'sa-late'));
      expect(seen.filter((s) => s.startsWith('add:'))).toHaveLength(6);
    } finally {
      await reflector.stop();
    }
  });
});
