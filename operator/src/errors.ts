/**
 * Coded errors of the operator. Each has a stable code and an HTTP status (the API server's for
 * API errors, 500 otherwise). Causes are kept with `{ cause }`.
 */
export class OperatorError extends Error {
  readonly code: string;
  readonly statusCode: number;

  constructor(code: string, statusCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OperatorError';
    this.code = code;
    this.statusCode = statusCode;
  }
}

/** Bad operator configuration: one error listing every problem (fails at boot). */
export class ConfigError extends OperatorError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super('ARC_ERR_CONFIG', 500, `invalid operator configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * The API server answered with an error status. `reason` is the Status object's reason
 * (NotFound, AlreadyExists, Conflict, Invalid, Forbidden, Expired, TooManyRequests...).
 */
export class KubeApiError extends OperatorError {
  readonly reason: string;
  readonly method: string;
  readonly path: string;
  /** Seconds from a Retry-After header, if any. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    statusCode: number,
    reason: string,
    message: string,
    request: { method: string; path: string },
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super('ARC_ERR_KUBE_API', statusCode, message, options);
    this.name = 'KubeApiError';
    this.reason = reason;
    this.method = request.method;
    this.path = request.path;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

/** The request did not reach the API server or no full answer came back (refused, reset, timeout). */
export class KubeTransportError extends OperatorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ARC_ERR_KUBE_TRANSPORT', 503, message, options);
    this.name = 'KubeTransportError';
  }
}

/** A write was refused because this process no longer holds the leader Lease. */
export class NotLeaderError extends OperatorError {
  constructor() {
    super('ARC_ERR_NOT_LEADER', 503, 'this operator instance is not the leader: write refused');
    this.name = 'NotLeaderError';
  }
}

/** The queue or a component was asked to work after it was shut down. */
export class ShutdownError extends OperatorError {
  constructor(what: string) {
    super('ARC_ERR_SHUTDOWN', 503, `${what} is shut down`);
    this.name = 'ShutdownError';
  }
}

export function isKubeApiError(err: unknown, statusCode?: number): err is KubeApiError {
  return err instanceof KubeApiError && (statusCode === undefined || err.statusCode === statusCode);
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
