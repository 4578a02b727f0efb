/** RFC 3339 with second precision, as metav1.Time serializes (a condition's lastTransitionTime). */
export function rfc3339(now: Date): string {
  return new Date(Math.floor(now.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
