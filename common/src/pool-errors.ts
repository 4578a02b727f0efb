/**
 * How a pool says "no connection within the wait deadline": the code and message this service
 * sends with its 503, and the message upstream Arc's pool returns. The sidecar's canary query
 * recognises exhaustion by these.
 */
export const POOL_WAIT_TIMEOUT_CODE = 'ARC_ERR_POOL_TIMEOUT';

/** Code of the 503 sent when the wait queue itself is full. */
export const POOL_QUEUE_FULL_CODE = 'ARC_ERR_QUEUE_FULL';

/** This service's text (`No available connections after 5.0s`) and upstream Arc's. */
export const POOL_WAIT_TIMEOUT_MESSAGES: readonly RegExp[] = [
  /No available connections after/i,
  /Timeout waiting for database connection/i,
];

/** Upstream Arc's "queue full" text (this service sends POOL_QUEUE_FULL_CODE). */
export const POOL_QUEUE_FULL_MESSAGES: readonly RegExp[] = [/queue (is )?full/i];

/** True when an error body (`{code?, error?}`) is a pool wait-deadline error. */
export function isPoolWaitTimeoutError(body: { code?: unknown; error?: unknown }): boolean {
  if (body.code === POOL_WAIT_TIMEOUT_CODE) return true;
  return typeof body.error === 'string' && POOL_WAIT_TIMEOUT_MESSAGES.some((re) => re.test(body.error as string));
}

/** True when an error body is a "wait queue full" refusal. */
export function isPoolQueueFullError(body: { code?: unknown; error?: unknown }): boolean {
  if (body.code === POOL_QUEUE_FULL_CODE) return true;
  return typeof body.error === 'string' && POOL_QUEUE_FULL_MESSAGES.some((re) => re.test(body.error as string));
}
