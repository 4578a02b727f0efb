// The informers' decoder check. The raw JSON client takes watch events as they come; a typed
// client (client-go) would refuse to decode an event of an unknown type or an object whose fields
// have the wrong types. Such an object must never reach a cache: the controller reads every pod
// of an ArcDeployment on each pass, so one unusable object there would fail every reconcile of
// its ArcDeployment until it changed. Only the shapes the operator relies on are checked.

const EVENT_TYPES = new Set(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringMap(v: unknown): boolean {
  return isRecord(v) && Object.values(v).every((x) => typeof x === 'string');
}

function listOf(v: unknown, item: (x: Record<string, unknown>) => boolean): boolean {
  return Array.isArray(v) && v.every((x) => isRecord(x) && item(x));
}

function metadataProblem(meta: unknown, namespaced: boolean): string | undefined {
  if (!isRecord(meta)) return 'no metadata';
  if (typeof meta['name'] !== 'string' || meta['name'] === '') return 'no metadata.name';
  if (namespaced && (typeof meta['namespace'] !== 'string' || meta['namespace'] === '')) return 'no metadata.namespace';
  if (meta['resourceVersion'] !== undefined && typeof meta['resourceVersion'] !== 'string') return 'metadata.resourceVersion is not a string';
  if (meta['generation'] !== undefined && typeof meta['generation'] !== 'number') return 'metadata.generation is not a number';
  for (const key of ['labels', 'annotations']) {
    if (meta[key] !== undefined && !isStringMap(meta[key])) return `metadata.${key} is not a map of strings`;
  }
  const refs = meta['ownerReferences'];
  if (refs !== undefined && !listOf(refs, (r) => typeof r['kind'] === 'string' && typeof r['name'] === 'string' && typeof r['apiVersion'] === 'string')) {
    return 'metadata.ownerReferences is malformed';
  }
  return undefined;
}

function bodyProblem(obj: Record<string, unknown>): string | undefined {
  const { spec, status } = obj;
  if (spec !== undefined && !isRecord(spec)) return 'spec is not an object';
  if (status !== undefined && !isRecord(status)) return 'status is not an object';
  const conditions = isRecord(status) ? status['conditions'] : undefined;
  if (conditions !== undefined && !listOf(conditions, (c) => typeof c['type'] === 'string' && typeof c['status'] === 'string')) {
    return 'status.conditions is not a list of conditions';
  }
  if (isRecord(status) && status['phase'] !== undefined && typeof status['phase'] !== 'string') return 'status.phase is not a string';
  const containers = isRecord(spec) ? spec['containers'] : undefined;
  if (containers !== undefined && !listOf(containers, (c) => typeof c['name'] === 'string')) return 'spec.containers is not a list of containers';
  return undefined;
}

/** Why a watch event cannot be used (undefined when it can). ERROR events are the client's. */
export function malformedEvent(event: { type?: unknown; object?: unknown }, namespaced: boolean): string | undefined {
  if (typeof event.type !== 'string' || !EVENT_TYPES.has(event.type)) return `unknown event type ${JSON.stringify(event.type)}`;
  const obj = event.object;
  if (!isRecord(obj)) return 'no object';
  if (event.type === 'BOOKMARK') return isRecord(obj['metadata']) ? undefined : 'no metadata';
  return metadataProblem(obj['metadata'], namespaced) ?? bodyProblem(obj);
}
