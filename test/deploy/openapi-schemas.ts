// JSON schemas for kubeconform, made here from an API server's OpenAPI v2 document (so: the
// Kubernetes version of the local control plane and the CRDs installed in it), never downloaded.
// One file per group/version/kind, `<kind>_<group>_<version>.json` (kind in lower case; for the
// core group kubeconform's {{ .Group }} is the version, so `service_v1_v1.json`), holding the
// kind's definition and every definition it refers to. Objects with declared properties get
// `additionalProperties: false` unless they keep unknown fields, so that a misspelt field is an
// error (kubeconform -strict); an int-or-string (a string with that format in OpenAPI v2) takes
// either.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

type Schema = Record<string, unknown>;

interface Gvk {
  group: string;
  version: string;
  kind: string;
}

/** Copies a definition, closing objects that declare their properties. */
function strict(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strict);
  if (node === null || typeof node !== 'object') return node;
  if ((node as Schema)['format'] === 'int-or-string') {
    const { type: _type, format: _format, ...rest } = node as Schema;
    return { ...rest, anyOf: [{ type: 'string' }, { type: 'integer' }] };
  }
  const out: Schema = {};
  for (const [k, v] of Object.entries(node as Schema)) out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Schema).map(([p, s]) => [p, strict(s)])) : strict(v);
  const open = out['x-kubernetes-preserve-unknown-fields'] === true || 'additionalProperties' in out;
  if (out['properties'] !== undefined && !open) out['additionalProperties'] = false;
  return out;
}

/** The names of the definitions `node` refers to, directly or through others. */
function referenced(definitions: Record<string, Schema>, root: string): Set<string> {
  const seen = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(visit);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node as Schema)) {
      if (k === '$ref' && typeof v === 'string' && v.startsWith('#/definitions/')) {
        const name = v.slice('#/definitions/'.length);
        if (!seen.has(name)) {
          seen.add(name);
          visit(definitions[name]);
        }
      } else visit(v);
    }
  };
  seen.add(root);
  visit(definitions[root]);
  return seen;
}

/** Writes one schema file per group/version/kind of `openapi` into `dir`; returns how many. */
export function writeKubeconformSchemas(openapi: Record<string, unknown>, dir: string): number {
  const definitions = (openapi['definitions'] ?? {}) as Record<string, Schema>;
  let written = 0;
  for (const [name, def] of Object.entries(definitions)) {
    const gvks = def['x-kubernetes-group-version-kind'] as Gvk[] | undefined;
    if (gvks === undefined) continue;
    const needed = referenced(definitions, name);
    const embedded = Object.fromEntries([...needed].map((n) => [n, strict(definitions[n])]));
    const schema = { ...(strict(def) as Schema), definitions: embedded };
    for (const gvk of gvks) {
      writeFileSync(join(dir, `${gvk.kind.toLowerCase()}_${gvk.group === '' ? gvk.version : gvk.group}_${gvk.version}.json`), JSON.stringify(schema));
      written++;
    }
  }
  return written;
}
