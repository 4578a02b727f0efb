/**
 * Coded errors of the query service. Each has a stable code, an HTTP status and a message a
 * client can show. Causes are kept with `{ cause }`.
 */
import { CodedError } from '@arcops/common';

export { ConfigError } from '@arcops/common';

export class ArcError extends CodedError {
  /** Seconds for a `Retry-After` header (503s). */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    code: string,
    statusCode: number,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(code, statusCode, message, options);
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

export function isArcError(err: unknown): err is ArcError {
  return err instanceof ArcError;
}

/** `No available connections after 5.0s`: the exact text of the incident, kept on purpose. */
export function poolTimeoutError(timeoutMs: number): ArcError {
  const seconds = (timeoutMs / 1000).toFixed(1);
  return new ArcError('ARC_ERR_POOL_TIMEOUT', 503, `No available connections after ${seconds}s`, {
    retryAfterSeconds: Math.max(1, Math.ceil(timeoutMs / 1000)),
  });
}

export function queueFullError(maxQueue: number): ArcError {
  return new ArcError(
    'ARC_ERR_QUEUE_FULL',
    503,
    `Query queue is full (${maxQueue} waiting); try again later`,
    { retryAfterSeconds: 1 },
  );
}

export function poolClosedError(): ArcError {
  return new ArcError('ARC_ERR_POOL_CLOSED', 503, 'The service is shutting down', {
    retryAfterSeconds: 1,
  });
}

export function queryTimeoutError(timeoutMs: number): ArcError {
  return new ArcError(
    'ARC_ERR_QUERY_TIMEOUT',
    504,
    `Query exceeded the ${(timeoutMs / 1000).toFixed(1)}s query timeout and was cancelled`,
  );
}

export function clientGoneError(): ArcError {
  return new ArcError('ARC_ERR_CLIENT_GONE', 499, 'The client closed the request');
}

export function queryCancelledError(id: string): ArcError {
  return new ArcError('ARC_ERR_QUERY_CANCELLED', 409, `The query was cancelled (DELETE /api/v1/queries/${id})`);
}

/** `what`: the statement refused, as a noun phrase ("DROP", "EXPLAIN of INSERT"). */
export function readOnlyError(what: string, hint?: string): ArcError {
  return new ArcError(
    'ARC_ERR_READ_ONLY',
    403,
    `${what} is not allowed: the query API is read-only (one SELECT, or EXPLAIN of one SELECT)${hint === undefined ? '' : `; ${hint}`}`,
  );
}

/** An answer over ARC_MAX_RESULT_ROWS or ARC_MAX_RESULT_BYTES. */
export function resultTooLargeError(what: string): ArcError {
  return new ArcError(
    'ARC_ERR_RESULT_TOO_LARGE',
    413,
    `Query result exceeds the service's limit: ${what}. Narrow the query, or add a LIMIT`,
  );
}

export function sandboxError(message: string, cause?: unknown): ArcError {
  return new ArcError('ARC_ERR_SANDBOX', 403, message, { cause });
}

export function badRequestError(message: string, cause?: unknown): ArcError {
  return new ArcError('ARC_ERR_BAD_REQUEST', 400, message, { cause });
}

export function sqlError(message: string, cause?: unknown): ArcError {
  return new ArcError('ARC_ERR_SQL', 400, message, { cause });
}

export function unauthorizedError(): ArcError {
  return new ArcError('ARC_ERR_UNAUTHORIZED', 401, 'Missing or invalid API token');
}

export function internalError(message: string, cause?: unknown): ArcError {
  return new ArcError('ARC_ERR_INTERNAL', 500, message, { cause });
}
