// Whether the API server answers: a KubeClient wrapper that notes the outcome of every request.
// Any HTTP answer counts as reachable (a 404, 409 or 429 is the API server speaking); a request
// that fails without one (refused, reset, no answer within the timeout) counts as unreachable. A
// watch counts when it delivers an event and when it ends. A request the caller aborted says
// nothing either way.
import { KubeApiError } from './errors.ts';
import type { KubeClient, ListOptions } from './kube.ts';

export class Reachability {
  private answered: boolean | undefined;

  /** True when the last request that ended got an answer; undefined before any has ended. */
  get reachable(): boolean | undefined {
    return this.answered;
  }

  /** The client with every request's outcome noted here. */
  wrap(client: KubeClient): KubeClient {
    const note = <T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> =>
      promise.then(
        (value) => {
          this.answered = true;
          return value;
        },
        (err: unknown) => {
          if (err instanceof KubeApiError) this.answered = true;
          else if (signal?.aborted !== true) this.answered = false;
          throw err;
        },
      );
    return {
      get: (res, namespace, name) => note(client.get(res, namespace, name)),
      list: (res, options) => note(client.list(res, options), signalOf(options)),
      watch: (res, options, onEvent) =>
        note(
          client.watch(res, options, (event) => {
            this.answered = true;
            onEvent(event);
          }),
          options.signal,
        ),
      create: (res, namespace, body) => note(client.create(res, namespace, body)),
      replace: (res, namespace, name, body) => note(client.replace(res, namespace, name, body)),
      patch: (res, namespace, name, body, type, subresource) => note(client.patch(res, namespace, name, body, type, subresource)),
      delete: (res, namespace, name, preconditions) => note(client.delete(res, namespace, name, preconditions)),
      apply: (res, body, options) => note(client.apply(res, body, options)),
      evict: (namespace, name, uid) => note(client.evict(namespace, name, uid)),
    };
  }
}

function signalOf(options: ListOptions | undefined): AbortSignal | undefined {
  return options?.signal;
}
