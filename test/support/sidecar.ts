// Test helpers for the sidecar: start the real sidecar (real HTTP socket on 127.0.0.1, random
// port, real probe loop and clock) against a service URL, read its /status and /metrics, and
// wait for verdicts.
import pino from 'pino';
import { loadConfig } from '../../sidecar/src/config.ts';
import type { StatusView } from '../../sidecar/src/monitor.ts';
import { createSidecar, type Sidecar, type SidecarDeps } from '../../sidecar/src/sidecar.ts';
import type { Service } from '../../service/src/service.ts';
import type { ConditionSnapshot } from '../../sidecar/src/condition.ts';

export type SidecarStatus = StatusView & { condition: ConditionSnapshot | null };

export interface RunningSidecar {
  url: string;
  sidecar: Sidecar;
  status(): Promise<SidecarStatus>;
  /** `arc_sidecar_transitions_total` as `{ "from->to": count }`. */
  transitions(): Promise<Record<string, number>>;
  get(path: string): Promise<{ status: number; body: string }>;
  close(): Promise<void>;
}

/**
 * Closes a service built in-process (startService, or the lossy fixture), cutting keep-alive
 * connections still open after 3 s: after a pool wait-deadline 503 followed by a client that
 * aborts a running query, the service's close() otherwise waits for the client to drop its idle
 * keep-alive socket (up to the 72 s keep-alive timeout). Reported to the service's owner.
 */
export async function closeServiceForcefully(service: Service, close: () => Promise<void>): Promise<void> {
  const cut = setTimeout(() => service.app.server.closeAllConnections(), 3000);
  try {
    await close();
  } finally {
    clearTimeout(cut);
  }
}

/** Fast settings for tests: probe every 0.25 s, judge within about a second. */
export const FAST: Readonly<Record<string, string>> = {
  PROBE_INTERVAL_SECONDS: '0.25',
  PROBE_TIMEOUT_SECONDS: '1',
  POOL_EXHAUSTED_SECONDS: '1',
  CAPACITY_LOST_SECONDS: '1',
  SERVICE_UNREACHABLE_SECONDS: '1',
  RECOVERY_CLEAR_SECONDS: '1',
};

export async function startSidecar(env: Record<string, string>, deps: Partial<SidecarDeps> = {}): Promise<RunningSidecar> {
  const config = loadConfig({ LOG_LEVEL: 'silent', ...env, SIDECAR_HOST: '127.0.0.1', SIDECAR_PORT: '0' });
  const sidecar = await createSidecar(config, { logger: pino({ level: config.logLevel }), ...deps });
  const url = await sidecar.app.listen({ port: 0, host: '127.0.0.1' });
  sidecar.start();
  const get = async (path: string): Promise<{ status: number; body: string }> => {
    const res = await fetch(`${url}${path}`);
    return { status: res.status, body: await res.text() };
  };
  return {
    url,
    sidecar,
    get,
    status: async () => JSON.parse((await get('/status')).body) as SidecarStatus,
    transitions: async () => parseTransitions((await get('/metrics')).body),
    close: () => sidecar.close(),
  };
}

/** The transitions that happened (the series born at 0 for the others are left out). */
export function parseTransitions(metricsText: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of metricsText.matchAll(/^arc_sidecar_transitions_total\{from="([^"]+)",to="([^"]+)"\} (\d+)$/gm)) {
    if (Number(m[3]) > 0) out[`${m[1]}->${m[2]}`] = Number(m[3]);
  }
  return out;
}

/**
 * Polls /status until `predicate` holds and returns that status; on timeout, fails with the
 * last status seen (so a failure says what the sidecar thought instead).
 */
export async function waitForStatus(
  sc: RunningSidecar,
  predicate: (s: SidecarStatus) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<SidecarStatus> {
  const end = Date.now() + timeoutMs;
  let last: SidecarStatus | undefined;
  for (;;) {
    last = await sc.status();
    if (predicate(last)) return last;
    if (Date.now() > end) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last status: ${JSON.stringify({ reason: last.reason, message: last.message, checks: last.checks }, null, 1)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits for a verdict with this reason. */
export function waitForReason(sc: RunningSidecar, reason: string, timeoutMs?: number): Promise<SidecarStatus> {
  return waitForStatus(sc, (s) => s.settled && s.reason === reason, `reason ${reason}`, timeoutMs);
}
