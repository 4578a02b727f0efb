// What the informer caches keep of each object: only what the controller reads (ADR 0009). The
// caches hold every ArcDeployment, every owned object and every pod for the life of the process,
// so the parts nobody reads are dropped as objects arrive, before they are stored:
// - managedFields, except our own server-side apply entry on owned objects (diff.ts reads it to
//   find fields we own but no longer want);
// - of a pod, everything but its metadata, the service container's image (and the other
//   containers' names), its node, phase, start time and conditions.
import type { KubeObject, ManagedFieldsEntry, ObservedPod } from './types.ts';
import { FIELD_MANAGER } from './types.ts';

/** Our own apply entry on the main resource, as diff.ts `appliedFields` looks it up. */
function ours(fieldManager: string): (m: ManagedFieldsEntry) => boolean {
  return (m) => m.manager === fieldManager && m.operation === 'Apply' && (m.subresource === undefined || m.subresource === '');
}

function withManagedFields<T extends KubeObject>(obj: T, keep: (m: ManagedFieldsEntry) => boolean): T {
  const meta = obj.metadata;
  if (meta?.managedFields === undefined) return obj;
  const { managedFields, ...rest } = meta;
  const kept = managedFields.filter(keep);
  return { ...obj, metadata: kept.length === 0 ? rest : { ...rest, managedFields: kept } };
}

/** An owned object: whole, but only our own managedFields entry. */
export function trimOwned(obj: KubeObject, fieldManager: string = FIELD_MANAGER): KubeObject {
  return withManagedFields(obj, ours(fieldManager));
}

/** An ArcDeployment: whole, without managedFields (its spec and status are what is read). */
export function trimArcDeployment(obj: KubeObject): KubeObject {
  return withManagedFields(obj, () => false);
}

/** A pod: metadata without managedFields, the containers' names and images, node, phase, start time, conditions. */
export function trimPod(obj: KubeObject): KubeObject {
  const pod = withManagedFields(obj as ObservedPod, () => false);
  const spec = pod.spec;
  const status = pod.status;
  const out: ObservedPod = { apiVersion: pod.apiVersion ?? 'v1', kind: pod.kind ?? 'Pod', metadata: pod.metadata ?? {} };
  if (spec !== undefined) {
    out.spec = {
      ...(spec.nodeName === undefined ? {} : { nodeName: spec.nodeName }),
      ...(spec.containers === undefined ? {} : { containers: spec.containers.map((c) => ({ name: c.name, ...(c.image === undefined ? {} : { image: c.image }) })) }),
    };
  }
  if (status !== undefined) {
    out.status = {
      ...(status.phase === undefined ? {} : { phase: status.phase }),
      ...(status.startTime === undefined ? {} : { startTime: status.startTime }),
      ...(status.conditions === undefined ? {} : { conditions: status.conditions }),
    };
  }
  return out;
}
