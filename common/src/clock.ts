/** Time as a deployable sees it: injected everywhere, so that tests can drive it. */
export interface Clock {
  /** Milliseconds: since the epoch, unless the clock says otherwise (the service's is monotonic). */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The wall clock. Its timers do not keep the process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** RFC 3339 with second precision, as metav1.Time serializes (a condition's lastTransitionTime). */
export function rfc3339(now: Date): string {
  return new Date(Math.floor(now.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
