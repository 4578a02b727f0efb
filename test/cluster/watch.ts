// Watching the API server from a cluster test: "this happens" and "nothing happens" are both
// checked on a watch with a deadline, never by sleeping a fixed time and looking afterwards.
import { Watch } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';

export interface WatchedEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/**
 * Watches `path` (with `query`: labelSelector, fieldSelector...) from its current state, which
 * comes first as ADDED events, until `until` returns true for an event or the deadline (an
 * epoch time in ms) passes. Resolves with every event seen, and whether `until` was met. A watch
 * the server ends before either is started again.
 */
export async function watchUntil<T>(
  kc: KubeConfig,
  path: string,
  query: Record<string, string>,
  until: (event: WatchedEvent<T>, seen: readonly WatchedEvent<T>[]) => boolean,
  deadlineMs: number,
): Promise<{ met: boolean; events: WatchedEvent<T>[] }> {
  const events: WatchedEvent<T>[] = [];
  const watch = new Watch(kc);
  let met = false;
  while (!met && Date.now() < deadlineMs) {
    await new Promise<void>((resolve, reject) => {
      let controller: AbortController | undefined;
      let settled = false;
      const finish = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        controller?.abort();
        const failed = err !== undefined && err !== null && !(err instanceof Error && err.name === 'AbortError');
        if (failed && !met && Date.now() < deadlineMs) reject(err instanceof Error ? err : new Error(JSON.stringify(err)));
        else resolve();
      };
      const timer = setTimeout(() => finish(), Math.max(0, deadlineMs - Date.now()));
      watch
        .watch(
          path,
          query,
          (type, object) => {
            if (settled) return;
            const event = { type: type as WatchedEvent<T>['type'], object: object as T };
            events.push(event);
            if (until(event, events)) {
              met = true;
              finish();
            }
          },
          finish,
        )
        .then((c) => {
          controller = c;
          if (settled) c.abort();
        }, finish);
    });
  }
  return { met, events };
}
