import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../operator/src/config.ts';
import { ConfigError } from '../../operator/src/errors.ts';

describe('loadConfig', () => {
  it('has working defaults', () => {
    const c = loadConfig({ POD_NAME: 'arc-operator-7d9-x', POD_NAMESPACE: 'arc-system' });
    expect(c).toMatchObject({
      kubeconfig: undefined,
      metricsPort: 8080,
      leaderElection: true,
      leaseName: 'arc-operator-leader',
      leaseNamespace: 'arc-system',
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      identity: 'arc-operator-7d9-x',
      watchNamespaces: [],
      resyncMs: 300_000,
      workers: 8,
      secretCacheMs: 10_000,
      inCluster: undefined,
      logLevel: 'info',
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it.each<[Record<string, string>, Partial<ReturnType<typeof loadConfig>>]>([
    [{ KUBECONFIG: '/tmp/kc' }, { kubeconfig: '/tmp/kc' }],
    [{ LEADER_ELECTION: 'off' }, { leaderElection: false }],
    [{ LEADER_ELECTION: 'ON' }, { leaderElection: true }],
    [{ WATCH_NAMESPACES: 'team-a, team-b,,team-a' }, { watchNamespaces: ['team-a', 'team-b'] }],
    [{ LEASE_NAMESPACE: 'ops', POD_NAMESPACE: 'arc-system' }, { leaseNamespace: 'ops' }],
    [{ RESYNC_SECONDS: '30', METRICS_PORT: '9090' }, { resyncMs: 30_000, metricsPort: 9090 }],
    [{ SECRET_CACHE_SECONDS: '0', WORKERS: '2' }, { secretCacheMs: 0, workers: 2 }],
    [{}, { coalesceMs: 1000 }],
    [{ COALESCE_SECONDS: '0.25' }, { coalesceMs: 250 }],
    // In a pod: the ServiceAccount, unless a KUBECONFIG is given.
    [
      { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' },
      { kubeconfig: undefined, inCluster: { host: '10.96.0.1', port: 443, serviceAccountDir: '/var/run/secrets/kubernetes.io/serviceaccount' } },
    ],
    [{ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: '6443', SERVICE_ACCOUNT_DIR: '/tmp/sa' }, { inCluster: { host: '127.0.0.1', port: 6443, serviceAccountDir: '/tmp/sa' } }],
    [{ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBECONFIG: '/tmp/kc' }, { kubeconfig: '/tmp/kc', inCluster: undefined }],
  ])('reads %j', (env, expected) => {
    expect(loadConfig(env)).toMatchObject(expected);
  });

  it('invents a unique identity without POD_NAME', () => {
    expect(loadConfig({}).identity).not.toBe(loadConfig({}).identity);
  });

  it('lists every problem in one error', () => {
    let error: unknown;
    try {
      loadConfig({
        METRICS_PORT: 'eighty',
        LEADER_ELECTION: 'maybe',
        WATCH_NAMESPACES: 'Team_A',
        LEASE_DURATION_SECONDS: '5',
        LEASE_RENEW_DEADLINE_SECONDS: '10',
        LOG_LEVEL: 'loud',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toEqual([
      'WATCH_NAMESPACES: "Team_A" is not a namespace name',
      'LEASE_RENEW_DEADLINE_SECONDS must be lower than LEASE_DURATION_SECONDS: a leader must give up before others may take over',
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
      'METRICS_PORT must be an integer, got "eighty"',
      'LEADER_ELECTION must be on or off, got "maybe"',
    ]);
    expect((error as ConfigError).code).toBe('ARC_ERR_CONFIG');
  });
});
