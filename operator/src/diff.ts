// Pure comparison of a desired object with the observed one, to decide whether a server-side
// apply is needed. Two questions: does every field we want have the value we want (drift, or a
// change of the spec)? And do we still own fields we no longer want (our managedFields entry
// lists them; an apply without them removes them)? Nothing is written when both say no.
import type { KubeObject, ManagedFieldsEntry } from './types.ts';

export type ApplyDecision =
  | { action: 'create' }
  | { action: 'none' }
  | { action: 'update'; why: 'differs' | 'stale-field'; path: string }
  | { action: 'conflict'; message: string };

const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;
const SUFFIX: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A Kubernetes quantity as a number ("500m" → 0.5, "1Gi" → 1073741824), or undefined. */
export function parseQuantity(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return undefined;
  const m = QUANTITY.exec(value.trim());
  if (!m) return undefined;
  const base = Number(m[1]);
  const suffix = m[2];
  if (suffix === undefined) return base;
  if (/^[eE]/.test(suffix)) return base * 10 ** Number(suffix.slice(1));
  const factor = SUFFIX[suffix];
  return factor === undefined ? undefined : base * factor;
}

/** Fields whose values the API server canonicalizes as quantities ("1000m" is stored as "1"). */
function isQuantityPath(path: readonly string[]): boolean {
  const last = path[path.length - 1];
  const parent = path[path.length - 2];
  return parent === 'limits' || parent === 'requests' || last === 'sizeLimit' || last === 'storage';
}

function isEmpty(value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (Array.isArray(value)) return value.length === 0;
  return typeof value === 'object' && Object.keys(value).length === 0;
}

function sameScalar(want: unknown, have: unknown, path: readonly string[]): boolean {
  if (want === have) return true;
  if (isQuantityPath(path)) {
    const a = parseQuantity(want);
    const b = parseQuantity(have);
    if (a !== undefined && b !== undefined) return Math.abs(a - b) <= Math.abs(a) * 1e-12;
  }
  return false;
}

/**
 * The path (as segments) of the first field of `want` that `have` lacks or holds differently,
 * or undefined when `have` contains all of `want`. Extra fields in `have` (defaults, other
 * managers) are fine in maps; a list must have exactly the wanted elements. An empty map or
 * list in `want` matches an absent one (the API server drops them).
 */
export function differencePath(want: unknown, have: unknown, path: string[] = []): string[] | undefined {
  if (want === undefined) return undefined;
  if (isEmpty(want) && isEmpty(have)) return undefined;
  if (Array.isArray(want)) {
    if (!Array.isArray(have) || have.length !== want.length) return path;
    for (let i = 0; i < want.length; i++) {
      const d = differencePath(want[i], have[i], [...path, String(i)]);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  if (want !== null && typeof want === 'object') {
    if (have === null || typeof have !== 'object' || Array.isArray(have)) return path;
    for (const [k, v] of Object.entries(want as Record<string, unknown>)) {
      const d = differencePath(v, (have as Record<string, unknown>)[k], [...path, k]);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  return sameScalar(want, have, path) ? undefined : path;
}

/** differencePath as a dotted string ('.' for the root). */
export function firstDifference(want: unknown, have: unknown): string | undefined {
  const d = differencePath(want, have);
  return d === undefined ? undefined : d.join('.') || '.';
}

/** The longest prefix of `path` at which `value` holds a list (undefined if none). */
export function innermostList(value: unknown, path: readonly string[]): string[] | undefined {
  for (let n = path.length; n > 0; n--) {
    let node: unknown = value;
    for (const segment of path.slice(0, n)) {
      node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[segment] : undefined;
    }
    if (Array.isArray(node)) return path.slice(0, n);
  }
  return undefined;
}

export function valueAt(value: unknown, path: readonly string[]): unknown {
  let node = value;
  for (const segment of path) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[segment] : undefined;
  return node;
}

/** RFC 6901 JSON pointer of a path. */
export function jsonPointer(path: readonly string[]): string {
  return path.map((s) => `/${s.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

function looseEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => looseEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** The element of a keyed list whose key fields equal `key` (fieldsV1 `k:{...}`). */
function findByKey(list: unknown, key: Record<string, unknown>): unknown {
  if (!Array.isArray(list)) return undefined;
  return list.find((item: unknown) => {
    if (item === null || typeof item !== 'object') return false;
    return Object.entries(key).every(([k, v]) => looseEqual((item as Record<string, unknown>)[k], v));
  });
}

/**
 * The first field that `fields` (a managedFields fieldsV1 set) says we own but `want` no
 * longer has, or undefined. Such a field is only removed by applying again without it.
 */
export function firstStaleField(fields: unknown, want: unknown, path: string[] = []): string | undefined {
  if (fields === null || typeof fields !== 'object') return undefined;
  for (const [member, children] of Object.entries(fields as Record<string, unknown>)) {
    if (member === '.') continue;
    let next: unknown;
    let label: string;
    if (member.startsWith('f:')) {
      label = member.slice(2);
      next = want !== null && typeof want === 'object' && !Array.isArray(want) ? (want as Record<string, unknown>)[label] : undefined;
    } else if (member.startsWith('k:')) {
      label = member;
      let key: Record<string, unknown>;
      try {
        key = JSON.parse(member.slice(2)) as Record<string, unknown>;
      } catch {
        return [...path, member].join('.');
      }
      next = findByKey(want, key);
    } else if (member.startsWith('v:')) {
      label = member;
      let value: unknown;
      try {
        value = JSON.parse(member.slice(2)) as unknown;
      } catch {
        return [...path, member].join('.');
      }
      next = Array.isArray(want) && want.some((w) => looseEqual(w, value)) ? value : undefined;
    } else if (member.startsWith('i:')) {
      label = member;
      next = Array.isArray(want) ? want[Number(member.slice(2))] : undefined;
    } else {
      continue;
    }
    if (next === undefined) return [...path, label].join('.');
    const deeper = firstStaleField(children, next, [...path, label]);
    if (deeper !== undefined) return deeper;
  }
  return undefined;
}

/** Our server-side apply entry in an object's managedFields (the main resource, not status). */
export function appliedFields(managedFields: readonly ManagedFieldsEntry[] | undefined, fieldManager: string): unknown {
  return managedFields?.find((m) => m.manager === fieldManager && m.operation === 'Apply' && (m.subresource === undefined || m.subresource === ''))
    ?.fieldsV1;
}

function isControlledBy(observed: KubeObject, ownerUid: string): boolean {
  return observed.metadata?.ownerReferences?.some((r) => r.controller === true && r.uid === ownerUid) ?? false;
}

/**
 * Whether to server-side apply `desired`, given `observed` (undefined = does not exist).
 * An existing object that another owner controls is never taken over.
 */
export function decideApply(desired: KubeObject, observed: KubeObject | undefined, ownerUid: string, fieldManager: string): ApplyDecision {
  if (observed === undefined) return { action: 'create' };
  if (!isControlledBy(observed, ownerUid)) {
    const name = desired.metadata?.name ?? '?';
    return {
      action: 'conflict',
      message: `${desired.kind ?? 'object'} ${name} already exists and is not controlled by this ArcDeployment: rename or delete it`,
    };
  }
  const differs = firstDifference(desired, observed);
  if (differs !== undefined) return { action: 'update', why: 'differs', path: differs };
  const owned = appliedFields(observed.metadata?.managedFields, fieldManager);
  const stale = owned === undefined ? undefined : firstStaleField(owned, desired);
  if (stale !== undefined) return { action: 'update', why: 'stale-field', path: stale };
  return { action: 'none' };
}
