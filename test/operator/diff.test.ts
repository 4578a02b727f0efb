import { describe, expect, it } from 'vitest';
import { decideApply, differencePath, firstDifference, firstStaleField, innermostList, jsonPointer, parseQuantity } from '../../operator/src/diff.ts';
import { desiredObjects } from '../../operator/src/desired.ts';
import type { KubeObject } from '../../operator/src/types.ts';
import { arcDeployment } from './fixtures.ts';

describe('parseQuantity', () => {
  it.each<[unknown, number | undefined]>([
    ['500m', 0.5],
    ['1', 1],
    [2, 2],
    ['1Gi', 1024 ** 3],
    ['512Mi', 512 * 1024 ** 2],
    ['1G', 1e9],
    ['1.5k', 1500],
    ['1e3', 1000],
    ['abc', undefined],
    ['1Gb', undefined],
    [undefined, undefined],
  ])('%j is %j', (input, expected) => {
    expect(parseQuantity(input)).toBe(expected);
  });
});

describe('firstDifference (is everything we want there?)', () => {
  it.each<[string, unknown, unknown, string | undefined]>([
    ['equal scalars', { a: 1 }, { a: 1 }, undefined],
    ['extra observed fields (defaults, other managers)', { a: 1 }, { a: 1, b: 2 }, undefined],
    ['a changed value', { spec: { replicas: 2 } }, { spec: { replicas: 3 } }, 'spec.replicas'],
    ['a missing field', { metadata: { labels: { x: 'y' } } }, { metadata: { labels: {} } }, 'metadata.labels.x'],
    ['an empty map the server dropped', { spec: { nodeSelector: {} } }, { spec: {} }, undefined],
    ['a list of another length', { l: [1, 2] }, { l: [1] }, 'l'],
    ['a list element that differs', { l: [{ name: 'a', value: '1' }] }, { l: [{ name: 'a', value: '2' }] }, 'l.0.value'],
    ['a CPU quantity canonicalized by the server', { resources: { limits: { cpu: '1000m' } } }, { resources: { limits: { cpu: '1' } } }, undefined],
    ['a memory quantity canonicalized by the server', { resources: { requests: { memory: '1024Mi' } } }, { resources: { requests: { memory: '1Gi' } } }, undefined],
    ['a really different quantity', { resources: { limits: { memory: '2Gi' } } }, { resources: { limits: { memory: '1Gi' } } }, 'resources.limits.memory'],
    ['a quantity-looking value outside resources', { env: { value: '1000m' } }, { env: { value: '1' } }, 'env.value'],
    ['false against absent', { a: false }, {}, 'a'],
  ])('%s', (_what, want, have, expected) => {
    expect(firstDifference(want, have)).toBe(expected);
  });
});

describe('firstStaleField (do we own something we no longer want?)', () => {
  const desired = {
    metadata: { labels: { a: '1' }, annotations: { keep: 'x' } },
    spec: {
      template: {
        spec: {
          containers: [{ name: 'arc', env: [{ name: 'PORT', value: '8000' }], ports: [{ containerPort: 8000, protocol: 'TCP' }] }],
          tolerations: [{ operator: 'Exists' }],
        },
      },
    },
  };

  it.each<[string, unknown, string | undefined]>([
    ['the same fields', { 'f:metadata': { 'f:labels': { 'f:a': {} } } }, undefined],
    ['an annotation removed from the spec', { 'f:metadata': { 'f:annotations': { 'f:keep': {}, 'f:gone': {} } } }, 'metadata.annotations.gone'],
    [
      'a keyed list element that still exists',
      { 'f:spec': { 'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"arc"}': { '.': {}, 'f:env': { 'k:{"name":"PORT"}': { 'f:value': {} } } } } } } } },
      undefined,
    ],
    [
      'an env var no longer wanted',
      { 'f:spec': { 'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"arc"}': { 'f:env': { 'k:{"name":"OLD"}': { 'f:value': {} } } } } } } } },
      'spec.template.spec.containers.k:{"name":"arc"}.env.k:{"name":"OLD"}',
    ],
    [
      'a container port keyed by port and protocol',
      { 'f:spec': { 'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"arc"}': { 'f:ports': { 'k:{"containerPort":8000,"protocol":"TCP"}': {} } } } } } } },
      undefined,
    ],
    ['a whole container removed', { 'f:spec': { 'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"sidecar"}': {} } } } } }, 'spec.template.spec.containers.k:{"name":"sidecar"}'],
    ['an atomic list', { 'f:spec': { 'f:template': { 'f:spec': { 'f:tolerations': {} } } } }, undefined],
    ['an atomic list no longer wanted', { 'f:spec': { 'f:template': { 'f:spec': { 'f:nodeSelector': {} } } } }, 'spec.template.spec.nodeSelector'],
  ])('%s', (_what, fields, expected) => {
    expect(firstStaleField(fields, desired)).toBe(expected);
  });
});

describe('decideApply', () => {
  const arcd = arcDeployment();
  const desired = desiredObjects(arcd).find((o) => o.kind === 'Service') as unknown as KubeObject;
  const ours = (over: Record<string, unknown> = {}, managedFields?: Record<string, unknown>): KubeObject => ({
    ...structuredClone(desired),
    metadata: {
      ...structuredClone(desired.metadata),
      uid: 'svc-1',
      resourceVersion: '5',
      ...(managedFields === undefined ? {} : { managedFields: [{ manager: 'arc-operator', operation: 'Apply', fieldsV1: managedFields }] }),
    },
    spec: { ...structuredClone(desired['spec'] as object), clusterIP: '10.96.0.12', sessionAffinity: 'None' },
    ...over,
  });

  it('creates what does not exist', () => {
    expect(decideApply(desired, undefined, 'uid-demo-1', 'arc-operator')).toEqual({ action: 'create' });
  });

  it('writes nothing when the observed object holds everything we want', () => {
    expect(decideApply(desired, ours(), 'uid-demo-1', 'arc-operator')).toEqual({ action: 'none' });
  });

  it('puts back a field someone edited', () => {
    const edited = ours();
    (edited['spec'] as { ports: { port: number }[] }).ports[0]!.port = 9999;
    expect(decideApply(desired, edited, 'uid-demo-1', 'arc-operator')).toEqual({ action: 'update', why: 'differs', path: 'spec.ports.0.port' });
  });

  it('removes a field we own but no longer want', () => {
    const observed = ours({}, { 'f:metadata': { 'f:labels': { 'f:old-label': {} } } });
    expect(decideApply(desired, observed, 'uid-demo-1', 'arc-operator')).toEqual({ action: 'update', why: 'stale-field', path: 'metadata.labels.old-label' });
  });

  it('ignores fields other managers own', () => {
    const observed = ours({}, undefined);
    observed.metadata!.managedFields = [{ manager: 'kubectl', operation: 'Update', fieldsV1: { 'f:metadata': { 'f:labels': { 'f:theirs': {} } } } }];
    expect(decideApply(desired, observed, 'uid-demo-1', 'arc-operator')).toEqual({ action: 'none' });
  });

  it.each<[string, unknown[] | undefined]>([
    ['no owner', undefined],
    ['another owner', [{ apiVersion: 'arcops.dev/v1alpha1', kind: 'ArcDeployment', name: 'demo', uid: 'older-uid', controller: true }]],
    ['a non-controller owner reference', [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'uid-demo-1' }]],
  ])('never takes over an object with %s', (_what, ownerReferences) => {
    const observed = ours();
    observed.metadata = { ...observed.metadata, ownerReferences: ownerReferences as never };
    const decision = decideApply(desired, observed, 'uid-demo-1', 'arc-operator');
    expect(decision.action).toBe('conflict');
    expect(decision).toMatchObject({ message: 'Service demo already exists and is not controlled by this ArcDeployment: rename or delete it' });
  });
});

describe('repairing a list another writer changed', () => {
  const desired = { spec: { template: { spec: { containers: [{ name: 'arc', env: [{ name: 'A', value: '1' }] }] } } }, metadata: { annotations: { 'arcops.dev/config-hash': 'x' } } };

  it.each<[string, unknown, string[] | undefined]>([
    ['an extra env var', { spec: { template: { spec: { containers: [{ name: 'arc', env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] }] } } } }, ['spec', 'template', 'spec', 'containers', '0', 'env']],
    ['a changed env value', { spec: { template: { spec: { containers: [{ name: 'arc', env: [{ name: 'A', value: '9' }] }] } } } }, ['spec', 'template', 'spec', 'containers', '0', 'env']],
    ['an extra container', { spec: { template: { spec: { containers: [{ name: 'arc', env: [] }, { name: 'x' }] } } } }, ['spec', 'template', 'spec', 'containers']],
  ])('replaces the innermost list around %s', (_what, observed, list) => {
    const path = differencePath(desired, observed);
    expect(path).toBeDefined();
    expect(innermostList(desired, path!)).toEqual(list);
  });

  it('finds no list around a plain field', () => {
    expect(innermostList(desired, ['metadata', 'annotations', 'arcops.dev/config-hash'])).toBeUndefined();
  });

  it('escapes JSON pointers', () => {
    expect(jsonPointer(['metadata', 'annotations', 'arcops.dev/config-hash', 'a~b'])).toBe('/metadata/annotations/arcops.dev~1config-hash/a~0b');
  });
});
