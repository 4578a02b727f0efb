import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadYaml } from '@kubernetes/client-node';
import type { V1Container, V1CustomResourceDefinition, V1Deployment, V1JSONSchemaProps } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { DEFAULT_FORBIDDEN_MODULES } from '@arcops/common';
import {
  DEFAULTS,
  PROBE_ENV,
  computeStatus,
  desiredDeployment,
  desiredObjects,
  mergeConditions,
  resolveIntOrPercent,
  resolveSpec,
  selectorString,
  DUCKDB_TEMP_LIMIT_MIB,
  TMP_HEADROOM_MIB,
} from '../../operator/src/plan.ts';
import type { Observation } from '../../operator/src/plan.ts';
import type { ArcDeploymentSpec, Condition, ObservedDeployment } from '../../operator/src/types.ts';
import { arcDeployment, deepFreeze, deploymentStatus, pod } from './fixtures.ts';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const LATER = new Date('2026-03-01T12:05:00.000Z');

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
    ['25%', '25%'],
  ])('sets the PodDisruptionBudget maxUnavailable to remediation.maxUnavailable %j', (maxUnavailable, expected) => {
    const pdb = desiredObjects(arcDeployment({ remediation: { maxUnavailable } })).find((o) => o.kind === 'PodDisruptionBudget');
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

describe('defaults', () => {
  const crd = loadYaml<V1CustomResourceDefinition>(readFileSync(join(import.meta.dirname, '../../crds/arcops.dev_arcdeployments.yaml'), 'utf8'));
  const specSchema = crd.spec.versions[0]?.schema?.openAPIV3Schema?.properties?.['spec'];

  function schemaAt(path: string): V1JSONSchemaProps | undefined {
    let node = specSchema;
    for (const part of path.split('.')) node = node?.properties?.[part];
    return node;
  }

  it.each<[string, unknown]>([
    ['replicas', DEFAULTS.replicas],
    ['imagePullPolicy', DEFAULTS.imagePullPolicy],
    ['logLevel', DEFAULTS.logLevel],
    ['resources.service', DEFAULTS.resources.service],
    ['resources.sidecar', DEFAULTS.resources.sidecar],
    ['apiTokenSecretRef.key', DEFAULTS.apiTokenKey],
    ['data.mountPath', DEFAULTS.mountPath],
    ['data.persistentVolumeClaim.accessModes', DEFAULTS.accessModes],
    ['forbiddenModules', DEFAULTS.forbiddenModules],
    ['probe.scanRoots', DEFAULTS.scanRoots],
    ['paused', DEFAULTS.paused],
    ...Object.entries(DEFAULTS.pool).map(([k, v]): [string, unknown] => [`pool.${k}`, v]),
    ...Object.entries(DEFAULTS.probe).map(([k, v]): [string, unknown] => [`probe.${k}`, v]),
    ...Object.entries(DEFAULTS.remediation).map(([k, v]): [string, unknown] => [`remediation.${k}`, v]),
  ])('the CRD and the operator agree on the default of spec.%s', (path, expected) => {
    expect(schemaAt(path)?._default).toEqual(expected);
  });

  it('fills every default into a minimal spec', () => {
    const spec = resolveSpec(arcDeployment().spec);
    expect(spec.replicas).toBe(2);
    expect(spec.apiTokenSecretRef).toEqual({ name: 'arc-tokens', key: 'tokens' });
    expect(spec.remediation.mode).toBe('Auto');
    expect(spec.data).toBeUndefined();
    expect(spec.resources.service).toEqual({ requests: { cpu: '250m', memory: '512Mi' }, limits: { memory: '2Gi' } });
  });

  it('turns integer quantities into strings, as the API server stores them', () => {
    expect(resolveSpec(arcDeployment({ resources: { service: { limits: { cpu: 2 } } } }).spec).resources.service).toEqual({ limits: { cpu: '2' } });
  });

  it.each([
    [1, 10, 1],
    ['25%', 10, 3],
    ['50%', 3, 2],
    ['10%', 1, 1],
  ])('resolves %j of %i pods to %i (percentages round up)', (value, total, expected) => {
    expect(resolveIntOrPercent(value, total)).toBe(expected);
  });
});

describe('computeStatus', () => {
  const healthyDeployment = deploymentStatus({ replicas: 2, readyReplicas: 2, availableReplicas: 2, updatedReplicas: 2 });
  const base = (over: Partial<Observation> = {}): Observation => ({
    arcd: arcDeployment(),
    deployment: healthyDeployment,
    pods: [pod('demo-a', 'True'), pod('demo-b', 'True')],
    secret: { state: 'ok' },
    problems: [],
    ...over,
  });
  const cond = (status: ReturnType<typeof computeStatus>, type: string): Condition | undefined => status.conditions?.find((c) => c.type === type);

  it.each<[string, Partial<Observation>, [string, string], [string, string], [string, string]]>([
    ['all healthy', {}, ['True', 'MinimumReplicasAvailable'], ['False', 'RolloutComplete'], ['False', 'AsExpected']],
    [
      'the token Secret is missing and nothing exists yet',
      { secret: { state: 'missing', name: 'arc-tokens' }, deployment: undefined, pods: [] },
      ['False', 'MinimumReplicasUnavailable'],
      ['False', 'SecretNotFound'],
      ['True', 'SecretNotFound'],
    ],
    [
      'the Secret lacks the key',
      { secret: { state: 'keyMissing', name: 'arc-tokens', key: 'tokens' } },
      ['True', 'MinimumReplicasAvailable'],
      ['False', 'SecretKeyNotFound'],
      ['True', 'SecretKeyNotFound'],
    ],
    [
      'a rollout is under way',
      { deployment: deploymentStatus({ replicas: 3, readyReplicas: 2, availableReplicas: 2, updatedReplicas: 1 }) },
      ['True', 'MinimumReplicasAvailable'],
      ['True', 'RolloutInProgress'],
      ['False', 'AsExpected'],
    ],
    [
      'the Deployment controller has not seen the new template yet',
      { deployment: { ...healthyDeployment, metadata: { name: 'demo', namespace: 'team-a', generation: 2 } } },
      ['True', 'MinimumReplicasAvailable'],
      ['True', 'RolloutInProgress'],
      ['False', 'AsExpected'],
    ],
    [
      'new pods wait for a healthy pool',
      { deployment: deploymentStatus({ replicas: 2, readyReplicas: 0, availableReplicas: 0, updatedReplicas: 2 }), pods: [pod('a', undefined), pod('b', undefined)] },
      ['False', 'MinimumReplicasUnavailable'],
      ['True', 'RolloutInProgress'],
      ['False', 'AsExpected'],
    ],
    [
      'one pod reports an exhausted pool',
      { deployment: deploymentStatus({ replicas: 2, readyReplicas: 1, availableReplicas: 1, updatedReplicas: 2 }), pods: [pod('demo-a', 'True'), pod('demo-b', 'False')] },
      ['True', 'MinimumReplicasAvailable'],
      ['True', 'RolloutInProgress'],
      ['True', 'PodsUnhealthy'],
    ],
    [
      'the rollout exceeded its deadline',
      {
        deployment: deploymentStatus({
          replicas: 3,
          readyReplicas: 2,
          availableReplicas: 2,
          updatedReplicas: 1,
          conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'ReplicaSet "demo-7f" has timed out progressing.' }],
        }),
      },
      ['True', 'MinimumReplicasAvailable'],
      ['False', 'ProgressDeadlineExceeded'],
      ['True', 'ProgressDeadlineExceeded'],
    ],
    [
      'a Service of that name belongs to someone else',
      { problems: [{ kind: 'Service', name: 'demo', reason: 'ResourceConflict', message: 'Service demo already exists and is not controlled by this ArcDeployment' }] },
      ['True', 'MinimumReplicasAvailable'],
      ['False', 'RolloutComplete'],
      ['True', 'ResourceConflict'],
    ],
    [
      'the API server refused an object',
      { problems: [{ kind: 'Deployment', name: 'demo', reason: 'ApplyFailed', message: 'spec.template.spec.affinity: Invalid value' }] },
      ['True', 'MinimumReplicasAvailable'],
      ['False', 'RolloutComplete'],
      ['True', 'ApplyFailed'],
    ],
    [
      'it is paused',
      { arcd: arcDeployment({ paused: true }), secret: { state: 'unchecked' } },
      ['True', 'MinimumReplicasAvailable'],
      ['False', 'Paused'],
      ['False', 'AsExpected'],
    ],
    [
      'it is scaled to zero',
      { arcd: arcDeployment({ replicas: 0 }), deployment: deploymentStatus({ replicas: 0 }), pods: [] },
      ['True', 'ScaledToZero'],
      ['False', 'RolloutComplete'],
      ['False', 'AsExpected'],
    ],
  ])('when %s: Available, Progressing, Degraded', (_what, over, available, progressing, degraded) => {
    const status = computeStatus(base(over), NOW);
    expect([cond(status, 'Available')?.status, cond(status, 'Available')?.reason]).toEqual(available);
    expect([cond(status, 'Progressing')?.status, cond(status, 'Progressing')?.reason]).toEqual(progressing);
    expect([cond(status, 'Degraded')?.status, cond(status, 'Degraded')?.reason]).toEqual(degraded);
  });

  it("says the same of a new Deployment before and after its controller first sees it: that first sight costs no status write", () => {
    const created: ObservedDeployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'demo', namespace: 'team-a', generation: 1 } };
    const before = computeStatus(base({ deployment: created, pods: [] }), NOW);
    const seen = computeStatus(base({ deployment: deploymentStatus({ replicas: 0, updatedReplicas: 0 }), pods: [] }), NOW);
    expect(cond(before, 'Progressing')).toMatchObject({ status: 'True', reason: 'RolloutInProgress', message: '0 of 2 pods run the current template' });
    expect(seen).toEqual(before);
    // A template its controller has not seen yet is still said so.
    const changed = computeStatus(base({ deployment: { ...healthyDeployment, metadata: { name: 'demo', namespace: 'team-a', generation: 2 } } }), NOW);
    expect(cond(changed, 'Progressing')?.message).toBe('waiting for the Deployment controller to observe the new template');
  });

  it('counts replicas from the Deployment, and ready and healthy pods from the pods themselves', () => {
    const status = computeStatus(
      base({
        // The Deployment controller has not caught up with the pods yet.
        deployment: deploymentStatus({ replicas: 4, readyReplicas: 0, availableReplicas: 0, updatedReplicas: 3 }),
        pods: [pod('a', 'True'), pod('b', 'True'), pod('c', 'False'), pod('d', undefined), pod('e', 'True', { deleting: true })],
      }),
      NOW,
    );
    expect(status).toMatchObject({ replicas: 4, readyReplicas: 2, availableReplicas: 0, updatedReplicas: 3, healthyReplicas: 2, observedGeneration: 1 });
    expect(cond(status, 'Available')).toMatchObject({ status: 'True', message: '2 of 2 pods ready (at least 1 needed)' });
    expect(status.selector).toBe('app.kubernetes.io/instance=demo,app.kubernetes.io/name=arc');
    expect(selectorString('demo')).toBe(status.selector);
  });

  it('turns Available False as soon as the pods stop being Ready, before the Deployment says so', () => {
    const status = computeStatus(base({ pods: [pod('demo-a', 'False'), pod('demo-b', 'True', { ready: false })] }), NOW);
    expect(status.readyReplicas).toBe(0);
    expect(cond(status, 'Available')).toMatchObject({ status: 'False', reason: 'MinimumReplicasUnavailable' });
  });

  it('names the unhealthy pods and their reasons in the Degraded message', () => {
    const status = computeStatus(base({ pods: [pod('demo-a', 'True'), pod('demo-b', 'False', { reason: 'ForbiddenModule' })] }), NOW);
    expect(cond(status, 'Degraded')?.message).toBe('1 of 2 pods report an unhealthy pool: demo-b (ForbiddenModule)');
  });

  it('tells the user what to do about a missing Secret', () => {
    const status = computeStatus(base({ secret: { state: 'missing', name: 'arc-tokens' }, deployment: undefined }), NOW);
    expect(cond(status, 'Degraded')?.message).toContain('Secret arc-tokens (spec.apiTokenSecretRef) was not found in namespace team-a');
    expect(cond(status, 'Degraded')?.message).toContain('under the key "tokens"');
  });

  it('keeps lastTransitionTime while a condition holds and moves it when it flips', () => {
    const first = computeStatus(base(), NOW);
    const arcdAfter = arcDeployment({}, {});
    arcdAfter.status = first;
    const same = computeStatus(base({ arcd: arcdAfter }), LATER);
    expect(same).toEqual(first);
    const flipped = computeStatus(base({ arcd: arcdAfter, pods: [pod('demo-a', 'True'), pod('demo-b', 'False')] }), LATER);
    expect(cond(flipped, 'Degraded')?.lastTransitionTime).toBe('2026-03-01T12:05:00Z');
    expect(cond(flipped, 'Available')?.lastTransitionTime).toBe('2026-03-01T12:00:00Z');
  });

  it('keeps the remediation history, which cannot be observed again', () => {
    const arcd = arcDeployment();
    arcd.status = {
      remediations: [{ time: '2026-02-01T00:00:00Z', action: 'Evict', pod: 'demo-x', reason: 'PoolExhausted', result: 'Evicted' }],
      lastRemediationTime: '2026-02-01T00:00:00Z',
    };
    const status = computeStatus(base({ arcd }), NOW);
    expect(status.remediations).toEqual(arcd.status.remediations);
    expect(status.lastRemediationTime).toBe('2026-02-01T00:00:00Z');
  });

  it('merges conditions decided elsewhere and drops stale ones', () => {
    const arcd = arcDeployment();
    arcd.status = { conditions: [{ type: 'Obsolete', status: 'True', reason: 'Old', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }] };
    const status = computeStatus(base({ arcd, extraConditions: [{ type: 'RemediationBlocked', status: 'True', reason: 'Storm', message: '3 of 3 pods unhealthy' }] }), NOW);
    expect(status.conditions?.map((c) => c.type)).toEqual(['Available', 'Progressing', 'Degraded', 'RemediationBlocked']);
  });

  it('never mutates what it observed', () => {
    const observation = deepFreeze(base({ pods: [pod('a', 'True'), pod('b', 'False')] }));
    expect(() => computeStatus(observation, NOW)).not.toThrow();
  });

  it('stamps conditions with the generation and a second-precision time', () => {
    const [c] = mergeConditions(undefined, [{ type: 'Available', status: 'True', reason: 'X', message: '' }], 7, new Date('2026-03-01T12:00:00.789Z'));
    expect(c).toEqual({ type: 'Available', status: 'True', observedGeneration: 7, lastTransitionTime: '2026-03-01T12:00:00Z', reason: 'X', message: '' });
  });
});
