// The error base every deployable's coded errors extend, and the errors they share: bad
// configuration, and the API server's answers (the operator and the sidecar both talk to it).
// Each error has a stable code and an HTTP status; causes are kept with `{ cause }`.

export class CodedError extends Error {
  readonly code: string;
  readonly statusCode: number;

  constructor(code: string, statusCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.statusCode = statusCode;
  }
}

/** Bad configuration: every problem at once, so that one restart fixes them all. */
export class ConfigError extends CodedError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[], options?: { cause?: unknown }) {
    super(
      'ARC_ERR_CONFIG',
      500,
      problems.length === 1 ? `Invalid configuration: ${problems[0]}` : `Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      options,
    );
    this.problems = problems;
  }
}

/**
 * The API server answered with an error status. `reason` is the Status object's reason
 * (NotFound, AlreadyExists, Conflict, Invalid, Forbidden, Expired, TooManyRequests...), the
 * message the Status object's message.
 */
export class KubeApiError extends CodedError {
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
    this.reason = reason;
    this.method = request.method;
    this.path = request.path;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

/** The request did not reach the API server or no full answer came back (refused, reset, timeout). */
export class KubeTransportError extends CodedError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ARC_ERR_KUBE_TRANSPORT', 503, message, options);
  }
}

export function isKubeApiError(err: unknown, statusCode?: number): err is KubeApiError {
  return err instanceof KubeApiError && (statusCode === undefined || err.statusCode === statusCode);
}
