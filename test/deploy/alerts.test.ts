// The chart's alerts, evaluated by Prometheus's own rule tester (`promtool test rules`) on the
// PrometheusRule `helm template` renders (release arc-operator in arc-system): each alert fires
// when it should and at the time it should, and stays silent at the boundary of each threshold.
// Annotations are checked by `promtool check rules` (their templates) and left out of the rule
// tests, which compare labels.
import { join } from 'node:path';
import { POOL_HEALTH_REASONS } from '@arcops/common';
import { beforeAll, describe, expect, it } from 'vitest';
import { promtool, renderedRuleGroups, tempFiles } from './promtool-support.ts';
import type { RuleGroup } from './promtool-support.ts';

/** The operator series of this release, as a ServiceMonitor scrape labels them. */
const OP = { namespace: 'arc-system', job: 'arc-operator-metrics' };
/** Labels every alert carries: the severity and prometheusRule.alertLabels. */
const team = { team: 'data-platform' };

interface Series {
  series: string;
  values: string;
}
interface AlertCheck {
  eval_time: string;
  alertname: string;
  exp_alerts: { exp_labels: Record<string, string> }[];
}
interface RuleTest {
  name: string;
  interval: string;
  input_series: Series[];
  alert_rule_test: AlertCheck[];
}

function sel(labels: Record<string, string>): string {
  return `{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;
}
function s(name: string, labels: Record<string, string>, values: string): Series {
  return { series: `${name}${sel(labels)}`, values };
}
function silent(alertname: string, ...times: string[]): AlertCheck[] {
  return times.map((eval_time) => ({ eval_time, alertname, exp_alerts: [] }));
}
function fires(alertname: string, eval_time: string, ...labels: Record<string, string>[]): AlertCheck {
  return { eval_time, alertname, exp_alerts: labels.map((l) => ({ exp_labels: l })) };
}
function test(name: string, input_series: Series[], alert_rule_test: AlertCheck[]): RuleTest {
  return { name, interval: '1m', input_series, alert_rule_test };
}

/** Runs `promtool test rules` on these cases against `groups`; resolves with its output. */
async function runRuleTests(groups: RuleGroup[], tests: RuleTest[]): Promise<{ code: number; output: string }> {
  const bare = groups.map((g) => ({ ...g, rules: g.rules.map(({ annotations: _annotations, ...r }) => r) }));
  const { dir, cleanup } = tempFiles({
    'rules.yaml': { groups: bare },
    'tests.yaml': { rule_files: ['rules.yaml'], evaluation_interval: '1m', tests },
  });
  try {
    return await promtool(['test', 'rules', join(dir, 'tests.yaml')]);
  } finally {
    cleanup();
  }
}

// ---- the pool alerts: one per kind of unhealthy reason ------------------------------------------

/** Which alert pages for each unhealthy reason of the pod condition, and how loud. */
const ALERT_FOR_REASON: Record<string, { alert: string; severity: string; byReason: boolean }> = {
  PoolExhausted: { alert: 'ArcPoolExhausted', severity: 'warning', byReason: true },
  PendingTimeouts: { alert: 'ArcPoolExhausted', severity: 'warning', byReason: true },
  PoolCapacityLost: { alert: 'ArcPoolExhausted', severity: 'warning', byReason: true },
  ServiceUnreachable: { alert: 'ArcServiceUnreachable', severity: 'warning', byReason: false },
  ForbiddenModule: { alert: 'ArcForbiddenModule', severity: 'critical', byReason: false },
};
const UNHEALTHY = POOL_HEALTH_REASONS.filter((r) => r !== 'Healthy');
const POOL_ALERTS = [...new Set(Object.values(ALERT_FOR_REASON).map((a) => a.alert))];

/** One sidecar's arc_sidecar_verdict series: `reason` follows `values`, the others stay 0. */
function verdicts(pod: string, reason: string, values: string): Series[] {
  const pod_labels = { namespace: 'team-a', pod, app_kubernetes_io_instance: 'orders' };
  return POOL_HEALTH_REASONS.map((r) => s('arc_sidecar_verdict', { ...pod_labels, reason: r }, r === reason ? values : '0x40'));
}

function poolCases(): RuleTest[] {
  const cases: RuleTest[] = [];
  for (const reason of UNHEALTHY) {
    const { alert, severity, byReason } = ALERT_FOR_REASON[reason] as (typeof ALERT_FOR_REASON)[string];
    const labels = { namespace: 'team-a', pod: 'orders-1', app_kubernetes_io_instance: 'orders', severity, ...team, ...(byReason ? { reason } : {}) };
    const others = POOL_ALERTS.filter((a) => a !== alert);
    cases.push(
      test(
        `${reason} for 2m (poolExhaustedFor) fires ${alert} at 2m, not before, and no other pool alert`,
        verdicts('orders-1', reason, '1x40'),
        [...silent(alert, '0m', '1m'), fires(alert, '2m', labels), fires(alert, '30m', labels), ...others.flatMap((a) => silent(a, '2m', '30m'))],
      ),
      test(`${reason} for 1m (below poolExhaustedFor) then Healthy: ${alert} stays silent`, verdicts('orders-1', reason, '1 1 0x40'), silent(alert, '1m', '2m', '3m', '10m')),
    );
  }
  cases.push(
    test(
      'a Healthy pod fires no pool alert',
      verdicts('orders-1', 'Healthy', '1x40'),
      POOL_ALERTS.flatMap((a) => silent(a, '5m', '30m')),
    ),
  );
  return cases;
}

// ---- the storm alert: follows the operator's own storm guard -----------------------------------

function stormCases(): RuleTest[] {
  const storm = (labels: Record<string, string>, values: string): Series => s('arc_operator_storm', { ...OP, pod: 'op-a', arcdeployment_namespace: 'team-a', arcdeployment: 'orders', ...labels }, values);
  const fired = { arcdeployment_namespace: 'team-a', arcdeployment: 'orders', severity: 'critical', ...team };
  // The sidecars' view of 1 sick pod of 2: half the pods, which the guard does not call a storm
  // (more than 50% = more than 1 of 2). The old `>= 0.5` rule paged here.
  const oneOfTwo = [
    s('arc_sidecar_healthy', { namespace: 'team-a', pod: 'orders-1', app_kubernetes_io_instance: 'orders' }, '0x40'),
    s('arc_sidecar_healthy', { namespace: 'team-a', pod: 'orders-2', app_kubernetes_io_instance: 'orders' }, '1x40'),
  ];
  return [
    test('the guard holds for 5m (stormFor): fires at 5m, not before', [storm({}, '1x40')], [...silent('ArcRemediationStorm', '0m', '4m'), fires('ArcRemediationStorm', '5m', fired)]),
    test('1 of 2 pods unhealthy, 2 of 4: no storm for the guard, no page', [...oneOfTwo, storm({}, '0x40')], silent('ArcRemediationStorm', '5m', '10m', '30m')),
    test('a storm of 4 minutes clears: silent', [storm({}, '1x3 0x40')], silent('ArcRemediationStorm', '4m', '5m', '10m')),
    test(
      "another release's operator (another job) reporting a storm does not page this release",
      [storm({ job: 'other-arc-operator-metrics' }, '1x40')],
      silent('ArcRemediationStorm', '5m', '10m'),
    ),
  ];
}

// ---- remediation failures ----------------------------------------------------------------------

function failingCases(threshold: number): RuleTest[] {
  const failed = (values: string, reason = 'PoolExhausted', result = 'failed'): Series =>
    s('arc_operator_remediations_total', { ...OP, pod: 'op-a', reason, result }, values);
  const fired = { namespace: 'arc-system', reason: 'PoolExhausted', severity: 'warning', ...team };
  const below = threshold - 1;
  return [
    test(`${threshold} failure(s) on a counter born at 0: fires at once`, [failed(`0x2 ${threshold}x40`)], [...silent('ArcRemediationFailing', '2m'), fires('ArcRemediationFailing', '3m', fired), fires('ArcRemediationFailing', '10m', fired)]),
    test(
      `${threshold} failure(s) on a counter born with them (no 0 sample before): fires at once`,
      [failed(`_x3 ${threshold}x40`)],
      [...silent('ArcRemediationFailing', '2m'), fires('ArcRemediationFailing', '3m', fired), fires('ArcRemediationFailing', '10m', fired)],
    ),
    test(`failures age out after 15 minutes`, [failed(`0x2 ${threshold}x40`)], silent('ArcRemediationFailing', '19m', '25m')),
    test(`a counter born with its failures ages out too`, [failed(`_x3 ${threshold}x40`)], silent('ArcRemediationFailing', '19m', '25m')),
    test(`${below} failure(s), below remediationFailures=${threshold}: silent`, [failed(`0x2 ${below}x40`), failed(`_x3 ${below}x40`, 'PendingTimeouts')], silent('ArcRemediationFailing', '3m', '10m')),
    test('evictions and PDB blocks are not failures', [failed('0+1x40', 'PoolExhausted', 'evicted'), failed('0+1x40', 'PoolExhausted', 'blocked')], silent('ArcRemediationFailing', '3m', '10m')),
  ];
}

// ---- the operator: up but failing, gone, or not reconciling -------------------------------------

function ready(pod: string, checks: { caches_synced: string; leader: string; api_reachable: string }, labels = OP): Series[] {
  return Object.entries(checks).map(([check, values]) => s('arc_operator_ready', { ...labels, pod, check }, values));
}
function reconciles(pod: string, result: string, values: string, labels = OP): Series {
  return s('arc_operator_reconcile_total', { ...labels, pod, result }, values);
}
const healthyOperator = (labels = OP): Series[] => [
  ...ready('op-a', { caches_synced: '1x40', leader: '1x40', api_reachable: '1x40' }, labels),
  ...ready('op-b', { caches_synced: '1x40', leader: '0x40', api_reachable: '1x40' }, labels),
  reconciles('op-a', 'success', '0+3x40', labels),
  reconciles('op-a', 'error', '0x40', labels),
  s('arc_operator_queue_depth', { ...labels, pod: 'op-a' }, '2x40'),
];

function operatorCases(): RuleTest[] {
  const alert = 'ArcOperatorNotReconciling';
  const fired = { severity: 'critical', ...team };
  const other = { namespace: 'arc-system', job: 'other-arc-operator-metrics' };
  return [
    test('a leader with filled caches that reconciles, and a ready standby: silent', healthyOperator(), silent(alert, '5m', '10m', '20m', '30m')),
    test(
      'up but failing: the API server is unreachable (leader 1, queue 0, caches never filled, no reconcile): fires at 5m',
      [
        ...ready('op-a', { caches_synced: '0x40', leader: '1x40', api_reachable: '0x40' }),
        s('arc_operator_leader', { ...OP, pod: 'op-a' }, '1x40'),
        s('arc_operator_queue_depth', { ...OP, pod: 'op-a' }, '0x40'),
        reconciles('op-a', 'success', '0x40'),
      ],
      [...silent(alert, '4m'), fires(alert, '5m', fired)],
    ),
    test(
      'up, leading, caches filled, but the API server stopped answering at 10m: fires 5m later',
      ready('op-a', { caches_synced: '1x40', leader: '1x40', api_reachable: '1x9 0x30' }),
      [...silent(alert, '10m', '14m'), fires(alert, '15m', fired)],
    ),
    test('gone: no series of this release at all (another release is fine): fires at 5m', healthyOperator(other), [...silent(alert, '4m'), fires(alert, '5m', fired)]),
    test(
      'gone at 10m (its series go stale): fires once stale for 5m',
      [...ready('op-a', { caches_synced: '1x9 stale', leader: '1x9 stale', api_reachable: '1x9 stale' }), reconciles('op-a', 'success', '0+1x9 stale')],
      [...silent(alert, '10m', '14m'), fires(alert, '15m', fired)],
    ),
    test(
      'two standbys and no leader: fires at 5m',
      [...ready('op-a', { caches_synced: '1x40', leader: '0x40', api_reachable: '1x40' }), ...ready('op-b', { caches_synced: '1x40', leader: '0x40', api_reachable: '1x40' })],
      [...silent(alert, '4m'), fires(alert, '5m', fired)],
    ),
    test(
      'every reconcile fails: fires 5m after the first failures',
      [...ready('op-a', { caches_synced: '1x40', leader: '1x40', api_reachable: '1x40' }), reconciles('op-a', 'success', '0x40'), reconciles('op-a', 'error', '0+1x40')],
      [...silent(alert, '5m'), fires(alert, '6m', fired)],
    ),
    test(
      'keys wait and no reconcile is taken: fires',
      [...ready('op-a', { caches_synced: '1x40', leader: '1x40', api_reachable: '1x40' }), reconciles('op-a', 'success', '0x40'), s('arc_operator_queue_depth', { ...OP, pod: 'op-a' }, '5x40')],
      [...silent(alert, '4m'), fires(alert, '5m', fired)],
    ),
    test(
      'one success within notReconcilingFor (15m) among failures: silent',
      [...ready('op-a', { caches_synced: '1x40', leader: '1x40', api_reachable: '1x40' }), reconciles('op-a', 'success', '0x10 1x40'), reconciles('op-a', 'error', '0+1x40')],
      silent(alert, '11m', '20m', '25m'),
    ),
  ];
}

describe('the PrometheusRule, checked by promtool', () => {
  let groups: RuleGroup[];
  beforeAll(async () => {
    groups = await renderedRuleGroups();
  });

  it('passes `promtool check rules` (expressions, durations and annotation templates)', async () => {
    const { dir, cleanup } = tempFiles({ 'rules.yaml': { groups } });
    try {
      const { code, output } = await promtool(['check', 'rules', join(dir, 'rules.yaml')]);
      expect(output).toMatch(/SUCCESS: \d+ rules found/);
      expect(code, output).toBe(0);
    } finally {
      cleanup();
    }
  });

  it('has one alert for every unhealthy reason of the pod condition, and a rule test below for each alert', () => {
    expect(Object.keys(ALERT_FOR_REASON).sort()).toEqual([...UNHEALTHY].sort());
    const alerts = groups.flatMap((g) => g.rules.map((r) => r.alert)).sort();
    expect(alerts).toEqual([...POOL_ALERTS, 'ArcOperatorNotReconciling', 'ArcRemediationFailing', 'ArcRemediationStorm'].sort());
  });

  it.each([
    { name: 'the pool alerts (every unhealthy reason)', cases: poolCases },
    { name: 'ArcRemediationStorm', cases: stormCases },
    { name: 'ArcRemediationFailing (remediationFailures=1)', cases: () => failingCases(1) },
    { name: 'ArcOperatorNotReconciling', cases: operatorCases },
  ])('$name: every `promtool test rules` case passes', async ({ cases }) => {
    const { code, output } = await runRuleTests(groups, cases());
    expect(code, output).toBe(0);
    expect(output).toContain('SUCCESS');
  });

  it('ArcRemediationFailing with remediationFailures=3: 2 failures are silent, 3 fire', async () => {
    const { code, output } = await runRuleTests(await renderedRuleGroups(['--set', 'prometheusRule.remediationFailures=3']), failingCases(3));
    expect(code, output).toBe(0);
  });

  it('a wrong expectation fails (the tester is really evaluating)', async () => {
    const wrong = test('ArcRemediationStorm never fires on a storm: wrong on purpose', [s('arc_operator_storm', { ...OP, pod: 'op-a', arcdeployment_namespace: 'team-a', arcdeployment: 'orders' }, '1x40')], silent('ArcRemediationStorm', '10m'));
    const { code, output } = await runRuleTests(groups, [wrong]);
    expect(code).not.toBe(0);
    expect(output).toContain('ArcRemediationStorm');
  });
});
