import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadYaml } from '@kubernetes/client-node';
import type { V1CustomResourceDefinition, V1JSONSchemaProps } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, resolveIntOrPercent, resolveSpec } from '../../operator/src/spec.ts';
import { arcDeployment } from './fixtures.ts';

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
