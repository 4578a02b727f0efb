import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_FORBIDDEN_MODULES } from '@arcops/common';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../sidecar/src/config.ts';
import { ConfigError } from '../../sidecar/src/errors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'arc-sidecar-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function problems(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('sidecar config', () => {
  it('has defaults that fit the service defaults (pool of 5, 5 s wait deadline) and a pod', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      serviceUrl: 'http://127.0.0.1:8000',
      servicePort: 8000,
      apiToken: undefined,
      port: 8081,
      host: '0.0.0.0',
      probeIntervalMs: 5000,
      scanIntervalMs: 5000,
      runtimeIntervalMs: 30_000,
      conditionRefreshMs: 300_000,
      podName: undefined,
      podNamespace: undefined,
      scanRoots: [],
      forbiddenModules: DEFAULT_FORBIDDEN_MODULES,
    });
    expect(c.thresholds).toEqual({
      exhaustedMs: 15_000,
      canaryFailures: 2,
      pendingTimeoutsMax: 5,
      pendingTimeoutsWindowMs: 60_000,
      oldestWaitMaxMs: 4_000,
      capacityLostMs: 30_000,
      unreachableMs: 15_000,
      recoveryMs: 30_000,
    });
    // The oldest-waiter limit must sit below the service's 5 s wait deadline, or it could never trip.
    expect(c.thresholds.oldestWaitMaxMs).toBeLessThan(5000);
    // The canary must be allowed to wait longer than the pool's deadline, to hear its 503.
    expect(c.canaryTimeoutMs).toBeGreaterThan(5000);
  });

  it('returns a frozen object', () => {
    const c = loadConfig({});
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.thresholds)).toBe(true);
    expect(() => {
      (c as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('reads every setting with units in the names', () => {
    const c = loadConfig({
      ARC_SERVICE_URL: 'http://localhost:9000/',
      ARC_API_TOKEN: 'secret-token',
      SIDECAR_PORT: '9999',
      PROBE_INTERVAL_SECONDS: '0.5',
      RUNTIME_CHECK_INTERVAL_SECONDS: '10',
      CONDITION_REFRESH_SECONDS: '60',
      POOL_EXHAUSTED_SECONDS: '1',
      POOL_EXHAUSTED_CANARY_FAILURES: '1',
      PENDING_TIMEOUTS_MAX_COUNT: '0',
      PENDING_TIMEOUTS_WINDOW_SECONDS: '10',
      OLDEST_WAIT_MAX_SECONDS: '0.75',
      CAPACITY_LOST_SECONDS: '2',
      SERVICE_UNREACHABLE_SECONDS: '3',
      RECOVERY_CLEAR_SECONDS: '1.5',
      FORBIDDEN_MODULES: '**/evil.js, old_pool.*',
      SCAN_ROOTS: '/srv/app,proc:auto,proc:arc-service:/app',
      POD_NAME: 'p',
      POD_NAMESPACE: 'ns',
    });
    expect(c.serviceUrl).toBe('http://localhost:9000');
    expect(c.servicePort).toBe(9000);
    expect(c.apiToken).toBe('secret-token');
    expect(c.probeIntervalMs).toBe(500);
    expect(c.scanIntervalMs).toBe(500);
    expect(c.runtimeIntervalMs).toBe(10_000);
    expect(c.conditionRefreshMs).toBe(60_000);
    expect(c.thresholds).toEqual({
      exhaustedMs: 1000,
      canaryFailures: 1,
      pendingTimeoutsMax: 0,
      pendingTimeoutsWindowMs: 10_000,
      oldestWaitMaxMs: 750,
      capacityLostMs: 2000,
      unreachableMs: 3000,
      recoveryMs: 1500,
    });
    expect(c.forbiddenModules).toEqual(['**/evil.js', 'old_pool.*']);
    expect(c.scanRoots).toEqual([
      { kind: 'dir', path: '/srv/app', spec: '/srv/app' },
      { kind: 'proc', match: 'auto', path: undefined, spec: 'proc:auto' },
      { kind: 'proc', match: 'arc-service', path: '/app', spec: 'proc:arc-service:/app' },
    ]);
    expect(c).toMatchObject({ podName: 'p', podNamespace: 'ns' });
  });

  it('reads the token from a mounted Secret file', () => {
    const file = join(tmp, 'token');
    writeFileSync(file, '# the sidecar token\nfile-token-123\n');
    expect(loadConfig({ ARC_API_TOKEN_FILE: file }).apiToken).toBe('file-token-123');
  });

  it('lists every problem in one error', () => {
    const found = problems({
      ARC_SERVICE_URL: 'ftp://user:pw@host',
      PROBE_INTERVAL_SECONDS: 'soon',
      SIDECAR_PORT: '70000',
      POOL_EXHAUSTED_SECONDS: '-1',
      FORBIDDEN_MODULES: 'ok.js,{broken',
      SCAN_ROOTS: 'proc:,proc:x:relative',
      POD_NAME: 'only-the-name',
      LOG_LEVEL: 'loud',
      ARC_API_TOKEN_FILE: join(tmp, 'missing'),
    });
    expect(found).toEqual([
      'ARC_SERVICE_URL must use http or https, got "ftp:"',
      'ARC_SERVICE_URL must not carry credentials: use ARC_API_TOKEN or ARC_API_TOKEN_FILE',
      'PROBE_INTERVAL_SECONDS must be a number of seconds, got "soon"',
      'POD_NAME and POD_NAMESPACE go together: set both to write the pod condition, or neither',
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
      expect.stringMatching(/^ARC_API_TOKEN_FILE .*missing cannot be read: ENOENT/),
      'SIDECAR_PORT must be between 0 and 65535, got 70000',
      'POOL_EXHAUSTED_SECONDS must be a number of seconds, got "-1"',
      'FORBIDDEN_MODULES: invalid pattern "{broken": unbalanced "{" in "{broken"',
      'SCAN_ROOTS entry "proc:" names no process: use proc:auto or proc:<part of its command line>',
      'SCAN_ROOTS entry "proc:x:relative": the folder after the process must be absolute (as the process sees it)',
    ]);
    // One problem, one line.
    expect(() => loadConfig({ SIDECAR_PORT: 'x' })).toThrow(/^Invalid configuration: SIDECAR_PORT must be an integer, got "x"$/);
  });

  it('refuses a token given twice', () => {
    const file = join(tmp, 'token2');
    writeFileSync(file, 'abc-def-ghi\n');
    expect(problems({ ARC_API_TOKEN: 'x', ARC_API_TOKEN_FILE: file })).toEqual(['set either ARC_API_TOKEN or ARC_API_TOKEN_FILE, not both']);
  });

  it('resolves relative scan folders against the given working folder', () => {
    expect(loadConfig({ SCAN_ROOTS: 'service/dist' }, '/repo').scanRoots).toEqual([{ kind: 'dir', path: '/repo/service/dist', spec: 'service/dist' }]);
  });
});
