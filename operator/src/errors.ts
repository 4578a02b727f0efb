// The operator's coded errors, on @arcops/common's error base (CodedError), and the API server's
// errors it shares with the sidecar. Each has a stable code and an HTTP status.
import { CodedError, isKubeApiError } from '@arcops/common';

export { CodedError, ConfigError, KubeApiError, KubeTransportError, isKubeApiError } from '@arcops/common';

/** A write was refused because this process no longer holds the leader Lease. */
export class NotLeaderError extends CodedError {
  constructor() {
    super('ARC_ERR_NOT_LEADER', 503, 'this operator instance is not the leader: write refused');
  }
}

export function isNotFound(err: unknown): boolean {
  return isKubeApiError(err, 404);
}

export function isConflict(err: unknown): boolean {
  return isKubeApiError(err, 409);
}

/** One line for logs and Events: the API server's message, or the error's. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
