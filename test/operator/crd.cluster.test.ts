// The ArcDeployment CRD from crds/ against the real API server: what a user gets back from
// `kubectl apply` for a bad resource (every message below is the API server's), defaults filled
// in for a minimal one, the samples accepted as they are, and the scale subresource.
import { join } from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestNamespace } from '../cluster/namespace.ts';
import { installCrd, kubectl, refusal, repoRoot } from './cluster-helpers.ts';

const ns = useTestNamespace('arcd-crd');
const group = 'arcops.dev';
const version = 'v1alpha1';
const plural = 'arcdeployments';

type Spec = Record<string, unknown>;

const valid = (): Spec => ({
  replicas: 3,
  image: 'registry.example.com/arc/service:1.4.2',
  sidecarImage: 'registry.example.com/arc/sidecar:0.1.0',
  apiTokenSecretRef: { name: 'arc-tokens' },
});

function body(name: string, spec: Spec): object {
  return { apiVersion: `${group}/${version}`, kind: 'ArcDeployment', metadata: { name }, spec };
}

function create(name: string, spec: Spec, fieldValidation = 'Strict'): Promise<unknown> {
  return ns.kc
    .makeApiClient(CustomObjectsApi)
    .createNamespacedCustomObject({ group, version, namespace: ns.name, plural, body: body(name, spec), fieldValidation });
}

beforeAll(async () => {
  await installCrd();
});

describe('the ArcDeployment CRD refuses what cannot work, and says why', () => {
  // [what is wrong, how the spec is spoiled, what the API server answers (422 unless said)]
  const cases: [string, (s: Spec) => Spec, string | RegExp, number?][] = [
    ['replicas is not a number', (s) => ({ ...s, replicas: 'three' }), 'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer'],
    ['replicas is negative', (s) => ({ ...s, replicas: -1 }), 'spec.replicas in body should be greater than or equal to 0'],
    ['replicas is absurd', (s) => ({ ...s, replicas: 5000 }), 'spec.replicas in body should be less than or equal to 1000'],
    ['the image is missing', ({ image: _image, ...s }) => s, 'spec.image: Required value'],
    ['the image has a space', (s) => ({ ...s, image: 'arc service:1.0' }), 'image must be a container image reference'],
    ['the image has a scheme', (s) => ({ ...s, image: 'https://ghcr.io/arc/service:1.0' }), 'image must be a container image reference'],
    ['the image repository is uppercase', (s) => ({ ...s, image: 'ghcr.io/Arc/Service:1.0' }), 'image must be a container image reference'],
    ['the image digest is short', (s) => ({ ...s, image: 'ghcr.io/arc/service@sha256:abc' }), 'image must be a container image reference'],
    ['the sidecar image is empty', (s) => ({ ...s, sidecarImage: '' }), 'sidecarImage must be a container image reference'],
    ['the pull policy is unknown', (s) => ({ ...s, imagePullPolicy: 'Sometimes' }), 'spec.imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"'],
    ['the token Secret is not named', ({ apiTokenSecretRef: _ref, ...s }) => s, 'spec.apiTokenSecretRef: Required value'],
    ['the token Secret name is not a name', (s) => ({ ...s, apiTokenSecretRef: { name: 'Arc_Tokens' } }), 'apiTokenSecretRef.name must be a Secret name'],
    ['the pool is empty', (s) => ({ ...s, pool: { size: 0 } }), 'spec.pool.size in body should be greater than or equal to 1'],
    ['the pool is huge', (s) => ({ ...s, pool: { size: 1000 } }), 'spec.pool.size in body should be less than or equal to 256'],
    ['the wait queue is negative', (s) => ({ ...s, pool: { maxQueue: -1 } }), 'spec.pool.maxQueue in body should be greater than or equal to 0'],
    ['the wait timeout has a unit', (s) => ({ ...s, pool: { waitTimeoutSeconds: '5s' } }), 'spec.pool.waitTimeoutSeconds in body must be of type number'],
    ['the DuckDB memory limit is not a size', (s) => ({ ...s, pool: { memoryLimit: 'lots' } }), 'pool.memoryLimit must look like 512MB, 2GiB or 80%'],
    ['data names a claim and a template', (s) => ({ ...s, data: { existingClaim: 'x', persistentVolumeClaim: { size: '1Gi' } } }), 'data: set exactly one of existingClaim or persistentVolumeClaim'],
    ['data names no claim', (s) => ({ ...s, data: { mountPath: '/data' } }), 'data: set exactly one of existingClaim or persistentVolumeClaim'],
    ['data is mounted over /tmp', (s) => ({ ...s, data: { existingClaim: 'x', mountPath: '/tmp' } }), 'data.mountPath must be an absolute path'],
    ['data is mounted at a relative path', (s) => ({ ...s, data: { existingClaim: 'x', mountPath: 'data' } }), 'data.mountPath must be an absolute path'],
    ['the claim size is not a quantity', (s) => ({ ...s, data: { persistentVolumeClaim: { size: 'big' } } }), 'data.persistentVolumeClaim.size must be a positive quantity'],
    ['the remediation mode is unknown', (s) => ({ ...s, remediation: { mode: 'Sometimes' } }), 'spec.remediation.mode: Unsupported value: "Sometimes"'],
    ['maxUnavailable would take every pod down', (s) => ({ ...s, remediation: { maxUnavailable: 3 } }), 'remediation.maxUnavailable must be lower than replicas'],
    ['maxUnavailable is zero', (s) => ({ ...s, remediation: { maxUnavailable: 0 } }), 'remediation.maxUnavailable must be a number of pods of at least 1 or a percentage from 1% to 99%'],
    ['maxUnavailable is over 100%', (s) => ({ ...s, remediation: { maxUnavailable: '150%' } }), 'remediation.maxUnavailable must be a number of pods of at least 1 or a percentage'],
    ['a pod would be judged faster than it is probed', (s) => ({ ...s, remediation: { unhealthySeconds: 2 }, probe: { intervalSeconds: 5 } }), 'remediation.unhealthySeconds must be at least probe.intervalSeconds'],
    ['a probe outlasts its interval', (s) => ({ ...s, probe: { intervalSeconds: 5, timeoutSeconds: 10 } }), 'probe.timeoutSeconds must be lower than probe.intervalSeconds'],
    ['the oldest-wait check could never fire', (s) => ({ ...s, probe: { oldestWaitMaxSeconds: 6 }, pool: { waitTimeoutSeconds: 5 } }), 'probe.oldestWaitMaxSeconds must be lower than pool.waitTimeoutSeconds'],
    ['the canary gives up before the pool does', (s) => ({ ...s, probe: { canaryTimeoutSeconds: 3 } }), 'probe.canaryTimeoutSeconds must be greater than pool.waitTimeoutSeconds'],
    ['the canary gives up with the pool', (s) => ({ ...s, probe: { canaryTimeoutSeconds: 5 }, pool: { waitTimeoutSeconds: 5 } }), 'probe.canaryTimeoutSeconds must be greater than pool.waitTimeoutSeconds'],
    ['the oldest-wait check fires with the pool', (s) => ({ ...s, probe: { oldestWaitMaxSeconds: 5.5 }, pool: { waitTimeoutSeconds: 5.5 } }), 'probe.oldestWaitMaxSeconds must be lower than pool.waitTimeoutSeconds'],
    ['maxUnavailable is every pod of two', (s) => ({ ...s, replicas: 2, remediation: { maxUnavailable: 2 } }), 'remediation.maxUnavailable must be lower than replicas'],
    ['exhaustion is judged within one probe', (s) => ({ ...s, probe: { intervalSeconds: 10, exhaustedSeconds: 5 } }), 'probe.exhaustedSeconds must be at least probe.intervalSeconds'],
    ['lost capacity is judged within one probe', (s) => ({ ...s, probe: { intervalSeconds: 10, capacityLostSeconds: 5 } }), 'probe.capacityLostSeconds must be at least probe.intervalSeconds'],
    ['unreachability is judged within one probe', (s) => ({ ...s, probe: { intervalSeconds: 10, unreachableSeconds: 5 } }), 'probe.unreachableSeconds must be at least probe.intervalSeconds'],
    ['the pending-timeouts window is shorter than a probe', (s) => ({ ...s, probe: { intervalSeconds: 10, pendingTimeoutsWindowSeconds: 5 } }), 'probe.pendingTimeoutsWindowSeconds must be at least probe.intervalSeconds'],
    ['a request exceeds its limit', (s) => ({ ...s, resources: { service: { requests: { memory: '4Gi' }, limits: { memory: '2Gi' } } } }), 'a resource request must not exceed its limit'],
    ['a resource is not a quantity', (s) => ({ ...s, resources: { sidecar: { limits: { memory: 'lots' } } } }), 'resource limits must be quantities such as 500m, 2, 512Mi or 1Gi'],
    ['podLabels hijack the selector', (s) => ({ ...s, podLabels: { 'app.kubernetes.io/instance': 'other' } }), 'podLabels must not set app.kubernetes.io/name, app.kubernetes.io/instance or app.kubernetes.io/managed-by'],
    ['a pod label value has a space', (s) => ({ ...s, podLabels: { team: 'data team' } }), 'podLabels values must be at most 63 letters'],
    ['a pod annotation uses the operator prefix', (s) => ({ ...s, podAnnotations: { 'arcops.dev/config-hash': 'x' } }), 'podAnnotations must not use the arcops.dev/ prefix'],
    ['a toleration mixes Exists with a value', (s) => ({ ...s, tolerations: [{ key: 'k', operator: 'Exists', value: 'v' }] }), 'a toleration with operator Exists must not have a value'],
    ['a forbidden module glob has a comma', (s) => ({ ...s, forbiddenModules: ['a.py,b.py'] }), 'forbiddenModules entries are globs without commas or spaces'],
    // kubectl apply validates strictly by default: a typo is refused (400), not silently pruned.
    ['a field name is misspelt', (s) => ({ ...s, poolSize: 5 }), 'unknown field "spec.poolSize"', 400],
  ];

  it('has at least 15 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });

  it.each(cases)('refuses an ArcDeployment when %s', async (_what, spoil, message, status = 422) => {
    const name = `bad-${Math.random().toString(36).slice(2, 8)}`;
    const { code, message: text } = await refusal(create(name, spoil(valid())));
    if (process.env['ARC_PRINT_REFUSALS'] === '1') process.stderr.write(`${_what}: ${text}\n`);
    expect(code).toBe(status);
    if (typeof message === 'string') expect(text).toContain(message);
    else expect(text).toMatch(message);
  });

  it('refuses a name that cannot name a Service', async () => {
    const { code, message } = await refusal(create('1-arc', valid()));
    expect(code).toBe(422);
    expect(message).toContain('metadata.name must be a DNS label of at most 50 characters that starts with a letter');
  });

  it('nothing refused was stored', async () => {
    const list = (await ns.kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group, version, namespace: ns.name, plural })) as { items: unknown[] };
    expect(list.items).toEqual([]);
  });
});

describe('what the CRD accepts', () => {
  it('fills in every default of a minimal ArcDeployment', async () => {
    await create('minimal', { image: 'ghcr.io/arcops/arc-service:0.1.0', sidecarImage: 'ghcr.io/arcops/arc-sidecar:0.1.0', apiTokenSecretRef: { name: 't' } });
    const stored = JSON.parse(await kubectl(['-n', ns.name, 'get', 'arcd', 'minimal', '-o', 'json'])) as { spec: Record<string, unknown> };
    expect(stored.spec).toMatchObject({
      replicas: 2,
      imagePullPolicy: 'IfNotPresent',
      paused: false,
      apiTokenSecretRef: { name: 't', key: 'tokens' },
      pool: { size: 5, waitTimeoutSeconds: 5, maxQueue: 1000, largeResultRows: 5000, queryTimeoutSeconds: 300 },
      probe: { intervalSeconds: 5, exhaustedSeconds: 15, scanRoots: ['proc:auto'] },
      remediation: { mode: 'Auto', maxUnavailable: 1, unhealthySeconds: 30, stormThreshold: '50%' },
      resources: { service: { requests: { cpu: '250m', memory: '512Mi' } } },
    });
  });

  it('takes every cross-field rule at its bound', async () => {
    // One below, equal to or one step past what each rule of spec and probe refuses.
    await create('bounds-a', {
      ...valid(),
      replicas: 1,
      remediation: { maxUnavailable: 1, unhealthySeconds: 5 },
      probe: { intervalSeconds: 5, timeoutSeconds: 4, exhaustedSeconds: 5, capacityLostSeconds: 5, unreachableSeconds: 5, pendingTimeoutsWindowSeconds: 5, oldestWaitMaxSeconds: 5.49, canaryTimeoutSeconds: 6 },
      pool: { waitTimeoutSeconds: 5.5 },
    });
    await create('bounds-b', { ...valid(), replicas: 2, remediation: { maxUnavailable: '50%' } });
    await create('bounds-c', { ...valid(), replicas: 3, remediation: { maxUnavailable: 2 } });
    await create('bounds-d', { ...valid(), replicas: 0, remediation: { maxUnavailable: 5 } });
    const stored = (await ns.kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group, version, namespace: ns.name, plural })) as { items: { metadata: { name: string } }[] };
    expect(stored.items.map((i) => i.metadata.name).filter((n) => n.startsWith('bounds-')).sort()).toEqual(['bounds-a', 'bounds-b', 'bounds-c', 'bounds-d']);
  });

  it('takes the samples under deploy/samples as they are', async () => {
    const out = await kubectl(['-n', ns.name, 'apply', '-f', join(repoRoot, 'deploy/samples')]);
    expect(out).toContain('arcdeployment.arcops.dev/arc-basic created');
    expect(out).toContain('arcdeployment.arcops.dev/arc-warehouse created');
    expect(out).toContain('secret/arc-tokens created');
  });

  it('lets a claim grow but not shrink or change class', async () => {
    await create('with-claim', { ...valid(), data: { persistentVolumeClaim: { size: '10Gi', storageClassName: 'fast' } } });
    const patch = (p: object): Promise<string> => kubectl(['-n', ns.name, 'patch', 'arcd', 'with-claim', '--type=merge', '-p', JSON.stringify(p)]);
    await expect(patch({ spec: { data: { persistentVolumeClaim: { size: '20Gi' } } } })).resolves.toContain('patched');
    await expect(patch({ spec: { data: { persistentVolumeClaim: { size: '5Gi' } } } })).rejects.toThrow('data.persistentVolumeClaim.size can grow but never shrink');
    await expect(patch({ spec: { data: { persistentVolumeClaim: { storageClassName: 'slow' } } } })).rejects.toThrow(
      'data.persistentVolumeClaim.storageClassName cannot be changed once the claim exists',
    );
  });

  it('scales through the scale subresource, as kubectl scale and an HPA do', async () => {
    await create('scalable', valid());
    await kubectl(['-n', ns.name, 'scale', 'arcd/scalable', '--replicas=5']);
    const stored = JSON.parse(await kubectl(['-n', ns.name, 'get', 'arcd', 'scalable', '-o', 'json'])) as { spec: { replicas: number } };
    expect(stored.spec.replicas).toBe(5);
    const scale = JSON.parse(await kubectl(['get', '--raw', `/apis/${group}/${version}/namespaces/${ns.name}/${plural}/scalable/scale`])) as { spec: { replicas: number } };
    expect(scale.spec.replicas).toBe(5);
  });

  it('answers to its short name and category', async () => {
    expect(await kubectl(['-n', ns.name, 'get', 'arcd', '-o', 'name'])).toContain('arcdeployment.arcops.dev/minimal');
    expect(await kubectl(['-n', ns.name, 'get', 'arcops', '-o', 'name'])).toContain('arcdeployment.arcops.dev/minimal');
  });
});
