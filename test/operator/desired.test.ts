import { DEFAULT_FORBIDDEN_MODULES } from '@arcops/common';
import type { V1Container, V1Deployment } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { PROBE_ENV, desiredDeployment, desiredObjects } from '../../operator/src/desired.ts';
import { DUCKDB_TEMP_LIMIT_MIB, TMP_HEADROOM_MIB, resolveSpec } from '../../operator/src/spec.ts';
import type { ArcDeploymentSpec } from '../../operator/src/types.ts';
import { arcDeployment, deepFreeze } from './fixtures.ts';

function deploymentOf(spec: Partial<ArcDeploymentSpec> = {}, tokenHash?: string): V1Deployment {
  const arcd = arcDeployment(spec);
  return desiredDeployment(arcd, resolveSpec(arcd.spec), tokenHash === undefined ? {} : { tokenHash }) as V1Deployment;
}

function container(d: V1Deployment, name: string): V1Container {
  const c = d.spec?.template.spec?.containers.find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name}`);
  return c;
}

function envOf(c: V1Container): Record<string, string | undefined> {
  return Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? (e.valueFrom?.fieldRef ? `fieldRef:${e.valueFrom.fieldRef.fieldPath}` : undefined)]));
}

describe('desiredObjects', () => {
  it.each([
    ['no data', {}, ['ServiceAccount', 'RoleBinding', 'Service', 'PodDisruptionBudget', 'Deployment']],
    ['an existing claim', { data: { existingClaim: 'parquet' } }, ['ServiceAccount', 'RoleBinding', 'Service', 'PodDisruptionBudget', 'Deployment']],
    [
      'a claim template',
      { data: { persistentVolumeClaim: { size: '20Gi' } } },
      ['ServiceAccount', 'RoleBinding', 'PersistentVolumeClaim', 'Service', 'PodDisruptionBudget', 'Deployment'],
    ],
  ] as const)('with %s owns %j', (_what, spec, kinds) => {
    const objects = desiredObjects(arcDeployment(spec));
    expect(objects.map((o) => o.kind)).toEqual(kinds);
  });

  it('marks every object as controlled by the ArcDeployment and labels it for the operator', () => {
    for (const o of desiredObjects(arcDeployment({ data: { persistentVolumeClaim: { size: '1Gi' } } }))) {
      expect(o.metadata.namespace).toBe('team-a');
      expect(o.metadata.ownerReferences).toEqual([
        { apiVersion: 'arcops.dev/v1alpha1', kind: 'ArcDeployment', name: 'demo', uid: 'uid-demo-1', controller: true, blockOwnerDeletion: true },
      ]);
      expect(o.metadata.labels).toMatchObject({
        'app.kubernetes.io/name': 'arc',
        'app.kubernetes.io/instance': 'demo',
        'app.kubernetes.io/managed-by': 'arc-operator',
        'app.kubernetes.io/part-of': 'arc-operator',
      });
    }
  });

  it("binds the pods' ServiceAccount to the sidecar ClusterRole in the ArcDeployment's namespace", () => {
    const [sa, binding] = desiredObjects(arcDeployment());
    expect(sa).toMatchObject({ kind: 'ServiceAccount', metadata: { name: 'demo' }, automountServiceAccountToken: false });
    expect(binding).toMatchObject({
      kind: 'RoleBinding',
      metadata: { name: 'demo-sidecar', namespace: 'team-a' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'arc-operator-sidecar' },
      subjects: [{ kind: 'ServiceAccount', name: 'demo', namespace: 'team-a' }],
    });
    expect(deploymentOf().spec?.template.spec?.serviceAccountName).toBe('demo');
    const renamed = desiredObjects(arcDeployment(), { sidecarClusterRole: 'my-release-sidecar' }).find((o) => o.kind === 'RoleBinding');
    expect(renamed).toMatchObject({ roleRef: { kind: 'ClusterRole', name: 'my-release-sidecar' } });
  });

  it.each([
    [1, 1],
    ['25%', 1],
    ['50%', 2],
    ['90%', 2],
    ['99%', 2],
  ])('sets the PodDisruptionBudget maxUnavailable of 3 pods to remediation.maxUnavailable %j as %j pods, never all of them', (maxUnavailable, expected) => {
    const pdb = desiredObjects(arcDeployment({ replicas: 3, remediation: { maxUnavailable } })).find((o) => o.kind === 'PodDisruptionBudget');
    expect(pdb?.spec).toEqual({
      maxUnavailable: expected,
      selector: { matchLabels: { 'app.kubernetes.io/name': 'arc', 'app.kubernetes.io/instance': 'demo' } },
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
    });
  });

  it('exposes the service port through a ClusterIP Service selecting the pods', () => {
    const svc = desiredObjects(arcDeployment()).find((o) => o.kind === 'Service');
    expect(svc?.spec).toEqual({
      type: 'ClusterIP',
      selector: { 'app.kubernetes.io/name': 'arc', 'app.kubernetes.io/instance': 'demo' },
      ports: [{ name: 'http', port: 8000, targetPort: 'http', protocol: 'TCP' }],
    });
  });

  it('creates the claim from its template', () => {
    const pvc = desiredObjects(arcDeployment({ data: { persistentVolumeClaim: { size: '20Gi', storageClassName: 'fast' } } })).find(
      (o) => o.kind === 'PersistentVolumeClaim',
    );
    expect(pvc?.metadata.name).toBe('demo-data');
    expect(pvc?.spec).toEqual({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '20Gi' } }, storageClassName: 'fast' });
  });

  it('never mutates the ArcDeployment', () => {
    const arcd = deepFreeze(arcDeployment({ data: { persistentVolumeClaim: { size: '2Gi' } }, podLabels: { team: 'a' }, tolerations: [{ operator: 'Exists' }] }));
    expect(() => desiredObjects(arcd, { tokenHash: 'abc' })).not.toThrow();
  });
});

describe('the Deployment', () => {
  const d = deploymentOf();
  const pod0 = d.spec?.template.spec;
  const service = container(d, 'arc');
  const sidecar = container(d, 'sidecar');

  it.each<[string, () => unknown, unknown]>([
    ['shares the process namespace (the sidecar scans the service files via /proc)', () => pod0?.shareProcessNamespace, true],
    ['does not automount a ServiceAccount token into the pod', () => pod0?.automountServiceAccountToken, false],
    ['gates readiness on the pool condition', () => pod0?.readinessGates, [{ conditionType: 'arcops.dev/PoolHealthy' }]],
    ['runs the pod as non-root with the RuntimeDefault seccomp profile', () => pod0?.securityContext, {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      fsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    }],
    ['runs both containers as the same user', () => [service.securityContext?.runAsUser, sidecar.securityContext?.runAsUser], [65532, 65532]],
    ['checks liveness on /health', () => service.livenessProbe?.httpGet?.path, '/health'],
    ['checks readiness on /ready', () => service.readinessProbe?.httpGet?.path, '/ready'],
    ['never lets capacity drop during a rollout', () => d.spec?.strategy?.rollingUpdate?.maxUnavailable, 0],
    ['selects pods by name and instance only', () => d.spec?.selector.matchLabels, { 'app.kubernetes.io/name': 'arc', 'app.kubernetes.io/instance': 'demo' }],
  ])('%s', (_what, read, expected) => {
    expect(read()).toEqual(expected);
  });

  it.each(['arc', 'sidecar'])('gives the %s container the restricted security context', (name) => {
    expect(container(d, name).securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it('mounts the ServiceAccount token only into the sidecar', () => {
    const tokenPath = '/var/run/secrets/kubernetes.io/serviceaccount';
    expect(sidecar.volumeMounts?.find((m) => m.mountPath === tokenPath)).toMatchObject({ name: 'kube-api-access', readOnly: true });
    expect(service.volumeMounts?.some((m) => m.mountPath === tokenPath || m.name === 'kube-api-access')).toBe(false);
    const projected = pod0?.volumes?.find((v) => v.name === 'kube-api-access')?.projected;
    expect(projected?.sources?.[0]?.serviceAccountToken).toEqual({ path: 'token', expirationSeconds: 3607 });
  });

  it('mounts the token Secret read-only and points both containers at it', () => {
    expect(pod0?.volumes?.find((v) => v.name === 'api-tokens')?.secret).toEqual({
      secretName: 'arc-tokens',
      items: [{ key: 'tokens', path: 'tokens' }],
      defaultMode: 0o440,
    });
    expect(envOf(service)['ARC_API_TOKENS_FILE']).toBe('/etc/arc/tokens/tokens');
    expect(envOf(sidecar)['ARC_API_TOKEN_FILE']).toBe('/etc/arc/tokens/tokens');
    for (const c of [service, sidecar]) expect(c.volumeMounts).toContainEqual({ name: 'api-tokens', mountPath: '/etc/arc/tokens', readOnly: true });
  });

  it('gives the read-only root filesystem a writable /tmp, bounded: DuckDB may spill up to its limit, the volume holds that and some room', () => {
    expect(service.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    const tmp = pod0?.volumes?.find((v) => v.name === 'tmp');
    const mib = (q: string, unit: RegExp): number => Number(unit.exec(q)?.[1] ?? NaN);
    const volume = mib(tmp?.emptyDir?.sizeLimit ?? '', /^(\d+)Mi$/);
    const spill = mib(envOf(service)['DUCKDB_MAX_TEMP_SIZE'] ?? '', /^(\d+)MiB$/);
    expect(spill).toBeGreaterThan(0);
    expect(volume - spill).toBe(TMP_HEADROOM_MIB);
    expect(TMP_HEADROOM_MIB).toBeGreaterThanOrEqual(64);
  });

  it.each([
    [1, '5'],
    [5, '9'],
    [64, '68'],
  ])('sizes UV_THREADPOOL_SIZE to a pool of %i: %s', (size, expected) => {
    expect(envOf(container(deploymentOf({ pool: { size } }), 'arc'))['UV_THREADPOOL_SIZE']).toBe(expected);
  });

  it('passes the service exactly the environment of its contract', () => {
    const env = envOf(container(deploymentOf({ pool: { size: 8, waitTimeoutSeconds: 2.5, maxQueue: 50, largeResultRows: 100, queryTimeoutSeconds: 30, memoryLimit: '1GB', threads: 2 } }), 'arc'));
    expect(env).toEqual({
      PORT: '8000',
      HOST: '0.0.0.0',
      ARC_API_TOKENS_FILE: '/etc/arc/tokens/tokens',
      DUCKDB_PATH: ':memory:',
      DUCKDB_POOL_SIZE: '8',
      DUCKDB_POOL_TIMEOUT: '2.5',
      DUCKDB_MAX_QUEUE: '50',
      DUCKDB_LARGE_RESULT_ROWS: '100',
      DUCKDB_QUERY_TIMEOUT: '30',
      DUCKDB_MEMORY_LIMIT: '1GB',
      DUCKDB_THREADS: '2',
      UV_THREADPOOL_SIZE: '12',
      TMPDIR: '/tmp',
      DUCKDB_MAX_TEMP_SIZE: `${DUCKDB_TEMP_LIMIT_MIB}MiB`,
      LOG_LEVEL: 'info',
    });
  });

  it('passes the sidecar its contract: service URL, port, thresholds, forbidden modules, pod identity', () => {
    const env = envOf(sidecar);
    expect(env).toMatchObject({
      ARC_SERVICE_URL: 'http://127.0.0.1:8000',
      SIDECAR_PORT: '8081',
      PROBE_INTERVAL_SECONDS: '5',
      FORBIDDEN_MODULES: DEFAULT_FORBIDDEN_MODULES.join(','),
      SCAN_ROOTS: 'proc:auto',
      POD_NAME: 'fieldRef:metadata.name',
      POD_NAMESPACE: 'fieldRef:metadata.namespace',
    });
  });

  it.each(PROBE_ENV.map(([field, name]) => [field, name]))('maps probe.%s to %s', (field, name) => {
    const env = envOf(container(deploymentOf({ probe: { [field]: 42 } }), 'sidecar'));
    expect(env[name]).toBe('42');
  });

  it.each([
    ['an existing claim', { existingClaim: 'parquet', mountPath: '/srv/parquet' }, 'parquet', '/srv/parquet'],
    ['a claim template', { persistentVolumeClaim: { size: '5Gi' } }, 'demo-data', '/data'],
  ])('mounts data from %s read-only at ARC_DATA_DIR', (_what, data, claim, path) => {
    const dep = deploymentOf({ data });
    expect(dep.spec?.template.spec?.volumes).toContainEqual({ name: 'data', persistentVolumeClaim: { claimName: claim, readOnly: true } });
    expect(container(dep, 'arc').volumeMounts).toContainEqual({ name: 'data', mountPath: path, readOnly: true });
    expect(envOf(container(dep, 'arc'))['ARC_DATA_DIR']).toBe(path);
  });

  it('passes pod placement and extra metadata through, keeping its own selector labels', () => {
    const dep = deploymentOf({
      nodeSelector: { disk: 'ssd' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'arc', effect: 'NoSchedule' }],
      affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } },
      priorityClassName: 'high',
      podLabels: { team: 'a', 'app.kubernetes.io/instance': 'hijack' },
      podAnnotations: { 'prometheus.io/scrape': 'true' },
    });
    const t = dep.spec?.template;
    expect(t?.spec?.nodeSelector).toEqual({ disk: 'ssd' });
    expect(t?.spec?.tolerations).toEqual([{ key: 'dedicated', operator: 'Equal', value: 'arc', effect: 'NoSchedule' }]);
    expect(t?.spec?.affinity).toEqual({ podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } });
    expect(t?.spec?.priorityClassName).toBe('high');
    expect(t?.metadata?.labels).toMatchObject({ team: 'a', 'app.kubernetes.io/instance': 'demo' });
    expect(t?.metadata?.annotations?.['prometheus.io/scrape']).toBe('true');
  });

  describe('the config-hash annotation that rolls the pods', () => {
    const hash = (spec: Partial<ArcDeploymentSpec> = {}, token = 't1'): string | undefined =>
      deploymentOf(spec, token).spec?.template.metadata?.annotations?.['arcops.dev/config-hash'];

    it('is stable for the same input', () => {
      expect(hash()).toMatch(/^[0-9a-f]{16}$/);
      expect(hash()).toBe(hash());
    });

    it('changes when the token Secret content changes (the service reads it only at start)', () => {
      expect(hash({}, 't2')).not.toBe(hash({}, 't1'));
    });

    it.each<[string, Partial<ArcDeploymentSpec>]>([
      ['the image', { image: 'registry.example.com/arc/service:1.4.3' }],
      ['the pool size', { pool: { size: 7 } }],
      ['a probe threshold', { probe: { exhaustedSeconds: 30 } }],
      ['a pod annotation', { podAnnotations: { a: 'b' } }],
    ])('changes with %s', (_what, spec) => {
      expect(hash(spec)).not.toBe(hash());
    });

    it('does not change with the replica count (scaling does not roll)', () => {
      expect(hash({ replicas: 7 })).toBe(hash());
    });
  });
});

