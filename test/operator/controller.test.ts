// The controller against an in-memory API (FakeKube) whose store doubles as the informer cache.
// What the real API server does (defaults, managedFields, garbage collection) is proven by
// controller.cluster.test.ts; this file pins the decisions: what is written, when, and when not.
import { describe, expect, it } from 'vitest';
import { Controller } from '../../operator/src/controller.ts';
import type { ObjectCache } from '../../operator/src/controller.ts';
import { EventRecorder } from '../../operator/src/events.ts';
import { Executor } from '../../operator/src/executor.ts';
import { RESOURCES, resourceForKind } from '../../operator/src/kube.ts';
import type { ArcDeployment, ArcDeploymentSpec, KubeObject, ObservedPod } from '../../operator/src/types.ts';
import { FakeClock } from '../support/fake-clock.ts';
import { FakeKube } from './fake-kube.ts';
import { arcDeployment, silentLogger } from './fixtures.ts';

/** The store as the cache; `lag.view`, when set, is the ArcDeployment the cache shows instead (a watch behind). */
function cacheOf(kube: FakeKube, lag: { view?: ArcDeployment } = {}): ObjectCache {
  return {
    arcDeployment: (ns, name) => lag.view ?? (kube.read(RESOURCES.arcDeployment, ns, name) as ArcDeployment | undefined),
    get: (kind, ns, name) => kube.read(resourceForKind(kind), ns, name),
    pods: () => [] as ObservedPod[],
  };
}

function setup(spec: Partial<ArcDeploymentSpec> = {}, { secret = true, leader = true } = {}) {
  const kube = new FakeKube();
  const clock = new FakeClock();
  clock.set(Date.parse('2026-03-01T12:00:00Z'));
  kube.put(RESOURCES.arcDeployment, arcDeployment(spec));
  if (secret) kube.put(RESOURCES.secret, { metadata: { name: 'arc-tokens', namespace: 'team-a' }, data: { tokens: Buffer.from('token-one-123\n').toString('base64') } });
  const state = { leader };
  const lag: { view?: ArcDeployment } = {};
  const controller = new Controller({
    client: kube,
    cache: cacheOf(kube, lag),
    executor: new Executor({ client: kube, logger: silentLogger, mayWrite: () => state.leader }),
    events: new EventRecorder({ client: kube, clock, logger: silentLogger, instance: 'op' }),
    clock,
    logger: silentLogger,
  });
  const writes = (): string[] => kube.calls.filter((c) => c.method === 'apply' || c.method === 'apply-status').map((c) => `${c.method}:${c.resource}`);
  const arcd = (): ArcDeployment => kube.read(RESOURCES.arcDeployment, 'team-a', 'demo') as ArcDeployment;
  return { kube, clock, controller, writes, arcd, state, lag };
}

const OWNED = ['serviceaccounts', 'rolebindings', 'services', 'poddisruptionbudgets', 'deployments'];

describe('Controller.reconcile', () => {
  it('creates every owned object and reports status', async () => {
    const t = setup();
    expect(await t.controller.reconcile('team-a/demo')).toEqual({ requeue: 'none' });
    const writes = t.writes();
    expect([...writes].sort()).toEqual([...OWNED.map((r) => `apply:${r}`), 'apply-status:arcdeployments'].sort());
    // The Deployment only after its ServiceAccount, status last.
    expect(writes.indexOf('apply:deployments')).toBeGreaterThan(writes.indexOf('apply:serviceaccounts'));
    expect(writes.at(-1)).toBe('apply-status:arcdeployments');
    expect(t.arcd().status?.observedGeneration).toBe(1);
  });

  it("moves the sidecar's grant from a Role of its own to the ClusterRole: the binding is made again, that Role deleted", async () => {
    const t = setup();
    await t.controller.reconcile('team-a/demo');
    const binding = t.kube.read(RESOURCES.roleBinding, 'team-a', 'demo-sidecar')!;
    const owned = { labels: binding.metadata?.labels, ownerReferences: binding.metadata?.ownerReferences };
    t.kube.put(RESOURCES.role, { metadata: { name: 'demo-sidecar', namespace: 'team-a', uid: 'role-1', ...owned }, rules: [] });
    t.kube.put(RESOURCES.roleBinding, { ...binding, metadata: { ...binding.metadata, uid: 'rb-1' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'demo-sidecar' } });
    const before = t.kube.calls.length;
    await t.controller.reconcile('team-a/demo');
    const calls = t.kube.calls.slice(before).filter((c) => c.method !== 'get').map((c) => `${c.method}:${c.resource}`);
    expect(calls.slice(0, 3)).toEqual(['delete:rolebindings', 'apply:rolebindings', 'delete:roles']);
    expect(t.kube.read(RESOURCES.roleBinding, 'team-a', 'demo-sidecar')?.['roleRef']).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'arc-operator-sidecar' });
    expect(t.kube.read(RESOURCES.role, 'team-a', 'demo-sidecar')).toBeUndefined();
  });

  it('leaves a Role of that name alone when the ArcDeployment does not control it', async () => {
    const t = setup();
    await t.controller.reconcile('team-a/demo');
    const binding = t.kube.read(RESOURCES.roleBinding, 'team-a', 'demo-sidecar')!;
    t.kube.put(RESOURCES.role, { metadata: { name: 'demo-sidecar', namespace: 'team-a', uid: 'role-1' }, rules: [] });
    t.kube.put(RESOURCES.roleBinding, { ...binding, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'demo-sidecar' } });
    await t.controller.reconcile('team-a/demo');
    expect(t.kube.read(RESOURCES.roleBinding, 'team-a', 'demo-sidecar')?.['roleRef']).toMatchObject({ kind: 'ClusterRole' });
    expect(t.kube.read(RESOURCES.role, 'team-a', 'demo-sidecar')).toBeDefined();
  });

  it('applies the Deployment once its ServiceAccount is there, without waiting for a slow Service', async () => {
    const t = setup();
    let release!: () => void;
    const serviceHeld = new Promise<void>((resolve) => (release = resolve));
    const apply = t.kube.apply.bind(t.kube);
    t.kube.apply = async (res, body, options) => {
      if (res.plural === 'services') await serviceHeld;
      return apply(res, body, options);
    };
    const pass = t.controller.reconcile('team-a/demo');
    for (let i = 0; i < 50 && !t.writes().includes('apply:deployments'); i++) await new Promise((r) => setImmediate(r));
    expect(t.writes()).toContain('apply:deployments');
    expect(t.writes()).not.toContain('apply:services');
    release();
    expect(await pass).toEqual({ requeue: 'none' });
    expect(t.writes()).toContain('apply:services');
  });

  it('writes nothing at all on the next pass when nothing changed', async () => {
    const t = setup();
    await t.controller.reconcile('team-a/demo');
    const before = t.writes().length;
    await t.controller.reconcile('team-a/demo');
    await t.controller.reconcile('team-a/demo');
    expect(t.writes().length).toBe(before);
  });

  it('keeps lastTransitionTime and writes no status again while the cache has not shown its write', async () => {
    const t = setup();
    t.lag.view = structuredClone(t.arcd()); // as the cache saw it before the first pass: no status
    await t.controller.reconcile('team-a/demo');
    const written = t.arcd().status?.conditions;
    expect(written?.length).toBeGreaterThan(0);
    const before = t.writes().length;
    await t.clock.advance(2000);
    await t.controller.reconcile('team-a/demo'); // the cache still shows no status
    expect(t.writes().length).toBe(before);
    delete t.lag.view;
    await t.controller.reconcile('team-a/demo');
    expect(t.writes().length).toBe(before);
    expect(t.arcd().status?.conditions).toEqual(written);
  });

  it('puts back a field edited by hand, and only that object', async () => {
    const t = setup();
    await t.controller.reconcile('team-a/demo');
    const svc = t.kube.read(RESOURCES.service, 'team-a', 'demo')!;
    t.kube.put(RESOURCES.service, { ...svc, spec: { ...(svc['spec'] as object), type: 'NodePort' } });
    const before = t.writes().length;
    await t.controller.reconcile('team-a/demo');
    expect(t.writes().slice(before)).toEqual(['apply:services']);
    expect((t.kube.read(RESOURCES.service, 'team-a', 'demo')!['spec'] as { type: string }).type).toBe('ClusterIP');
    const reasons = [...t.kube.objects.values()].filter((o) => o.kind === 'Event').map((e) => e['reason']);
    expect(reasons).toContain('DriftCorrected');
  });

  it('rolls the pods when the token Secret changes', async () => {
    const t = setup();
    await t.controller.reconcile('team-a/demo');
    const hash = (): string | undefined =>
      (t.kube.read(RESOURCES.deployment, 'team-a', 'demo') as { spec: { template: { metadata: { annotations: Record<string, string> } } } }).spec.template.metadata
        .annotations['arcops.dev/config-hash'];
    const before = hash();
    t.kube.put(RESOURCES.secret, { metadata: { name: 'arc-tokens', namespace: 'team-a' }, data: { tokens: Buffer.from('token-two-456\n').toString('base64') } });
    await t.controller.reconcile('team-a/demo');
    expect(hash()).not.toBe(before);
  });

  it.each([
    ['is missing', false, 'SecretNotFound'],
    ['has no tokens under the key', true, 'SecretKeyNotFound'],
  ])('does not create the Deployment while the token Secret %s, reports Degraded and asks for a backoff', async (_what, secretExists, reason) => {
    const t = setup({}, { secret: false });
    if (secretExists) t.kube.put(RESOURCES.secret, { metadata: { name: 'arc-tokens', namespace: 'team-a' }, data: { other: 'eA==' } });
    expect(await t.controller.reconcile('team-a/demo')).toEqual({ requeue: 'backoff', why: reason });
    expect(t.writes()).not.toContain('apply:deployments');
    expect(t.writes()).toContain('apply:services');
    const degraded = t.arcd().status?.conditions?.find((c) => c.type === 'Degraded');
    expect(degraded).toMatchObject({ status: 'True', reason });
  });

  it('only reports status while paused', async () => {
    const t = setup({ paused: true });
    expect(await t.controller.reconcile('team-a/demo')).toEqual({ requeue: 'none' });
    expect(t.writes()).toEqual(['apply-status:arcdeployments']);
    expect(t.arcd().status?.conditions?.find((c) => c.type === 'Progressing')).toMatchObject({ status: 'False', reason: 'Paused' });
  });

  it('does nothing for an ArcDeployment that is gone', async () => {
    const t = setup();
    t.kube.objects.clear();
    expect(await t.controller.reconcile('team-a/demo')).toEqual({ requeue: 'none' });
    expect(t.kube.calls).toEqual([]);
  });

  it('leaves an object it does not control alone and says so', async () => {
    const t = setup();
    const foreign: KubeObject = { metadata: { name: 'demo', namespace: 'team-a', labels: { app: 'someone-else' } }, spec: { type: 'NodePort' } };
    t.kube.put(RESOURCES.service, foreign);
    expect(await t.controller.reconcile('team-a/demo')).toEqual({ requeue: 'backoff', why: 'ResourceConflict' });
    expect(t.writes()).not.toContain('apply:services');
    expect(t.kube.read(RESOURCES.service, 'team-a', 'demo')!['spec']).toEqual({ type: 'NodePort' });
    expect(t.arcd().status?.conditions?.find((c) => c.type === 'Degraded')).toMatchObject({ status: 'True', reason: 'ResourceConflict' });
  });

  it('writes nothing once it is not the leader', async () => {
    const t = setup({}, { leader: false });
    await expect(t.controller.reconcile('team-a/demo')).rejects.toMatchObject({ code: 'ARC_ERR_NOT_LEADER' });
    expect(t.writes()).toEqual([]);
  });
});
