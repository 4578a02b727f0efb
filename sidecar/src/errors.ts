/**
 * Coded errors of the sidecar, on @arcops/common's error base. Each has a stable code, an HTTP
 * status (for when one reaches a client of the sidecar) and a message an operator can act on.
 * Causes are kept with `{ cause }`.
 */
import { CodedError } from '@arcops/common';

export { ConfigError } from '@arcops/common';

export class SidecarError extends CodedError {}

/** The service did not answer at all (connection refused, reset, DNS...). */
export function serviceUnreachableError(url: string, cause: unknown): SidecarError {
  const detail = describeCause(cause);
  return new SidecarError('ARC_ERR_SERVICE_UNREACHABLE', 502, `no answer from ${url}: ${detail}`, { cause });
}

/** The service did not answer within the probe timeout. */
export function serviceTimeoutError(url: string, timeoutMs: number): SidecarError {
  return new SidecarError('ARC_ERR_SERVICE_TIMEOUT', 504, `no answer from ${url} within ${(timeoutMs / 1000).toFixed(1)}s`);
}

/** The service answered with an HTTP status the probe cannot use. */
export function serviceHttpError(url: string, status: number, body: string): SidecarError {
  const hint = status === 401 || status === 403 ? ' (check ARC_API_TOKEN / ARC_API_TOKEN_FILE)' : '';
  const snippet = body.length > 200 ? `${body.slice(0, 200)}...` : body;
  return new SidecarError('ARC_ERR_SERVICE_HTTP', 502, `${url} answered HTTP ${status}${hint}: ${snippet}`);
}

/** The service answered 2xx with a body in neither known metrics shape. */
export function serviceShapeError(url: string, problem: string): SidecarError {
  return new SidecarError('ARC_ERR_SERVICE_SHAPE', 502, `${url} answered an unexpected body: ${problem}`);
}

/** A short, human text for a fetch/socket failure (undici hides the useful part in `cause`). */
export function describeCause(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === 'string' ? `${code} ${cause.message}`.replace(`${code} ${code}`, code) : cause.message;
  }
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && !err.message.includes(code) ? `${code} ${err.message}` : err.message;
}
