import { describe, expect, it } from 'vitest';
import { EventRecorder } from '../../operator/src/events.ts';
import { RESOURCES } from '../../operator/src/kube.ts';
import type { KubeObject } from '../../operator/src/types.ts';
import { FakeClock } from '../support/fake-clock.ts';
import { FakeKube } from './fake-kube.ts';
import { arcDeployment, silentLogger } from './fixtures.ts';

function events(kube: FakeKube): KubeObject[] {
  return [...kube.objects.entries()].filter(([k]) => k.startsWith('events/')).map(([, v]) => v);
}

describe('EventRecorder', () => {
  const arcd = arcDeployment();

  it('creates an Event about the object, from the operator', async () => {
    const kube = new FakeKube();
    const clock = new FakeClock();
    clock.set(Date.parse('2026-03-01T12:00:00Z'));
    await new EventRecorder({ client: kube, clock, logger: silentLogger, instance: 'op-a' }).record(arcd, 'Warning', 'SecretNotFound', 'Secret arc-tokens not found');
    expect(events(kube)).toHaveLength(1);
    expect(events(kube)[0]).toMatchObject({
      involvedObject: { apiVersion: 'arcops.dev/v1alpha1', kind: 'ArcDeployment', name: 'demo', namespace: 'team-a', uid: 'uid-demo-1' },
      type: 'Warning',
      reason: 'SecretNotFound',
      message: 'Secret arc-tokens not found',
      count: 1,
      firstTimestamp: '2026-03-01T12:00:00Z',
      source: { component: 'arc-operator' },
      reportingComponent: 'arcops.dev/arc-operator',
      reportingInstance: 'op-a',
    });
  });

  it('folds repeats into one Event with a count, and starts a new one after the window', async () => {
    const kube = new FakeKube();
    const clock = new FakeClock();
    const rec = new EventRecorder({ client: kube, clock, logger: silentLogger, instance: 'op-a', dedupeWindowMs: 600_000 });
    for (let i = 0; i < 5; i++) {
      await rec.record(arcd, 'Warning', 'SecretNotFound', 'Secret arc-tokens not found');
      await clock.advance(60_000);
    }
    await rec.record(arcd, 'Normal', 'Created', 'created Deployment demo');
    expect(events(kube).map((e) => [e['reason'], e['count']])).toEqual([
      ['SecretNotFound', 5],
      ['Created', 1],
    ]);
    expect(events(kube)[0]!['lastTimestamp']).toBe('1970-01-01T00:04:00Z');
    await clock.advance(700_000);
    await rec.record(arcd, 'Warning', 'SecretNotFound', 'Secret arc-tokens not found');
    expect(events(kube).filter((e) => e['reason'] === 'SecretNotFound')).toHaveLength(2);
  });

  it('starts a new Event when the folded one has expired on the server', async () => {
    const kube = new FakeKube();
    const rec = new EventRecorder({ client: kube, clock: new FakeClock(), logger: silentLogger, instance: 'op-a' });
    await rec.record(arcd, 'Warning', 'ApplyFailed', 'x');
    const [first] = events(kube);
    kube.objects.delete(`events/team-a/${first!.metadata!.name}`);
    await rec.record(arcd, 'Warning', 'ApplyFailed', 'x');
    expect(events(kube)).toHaveLength(1);
    expect(events(kube)[0]!['count']).toBe(1);
  });

  it('never throws when the API server refuses (events are best effort)', async () => {
    const kube = new FakeKube();
    kube.down = true;
    const rec = new EventRecorder({ client: kube, clock: new FakeClock(), logger: silentLogger, instance: 'op-a' });
    await expect(rec.record(arcd, 'Normal', 'Created', 'x')).resolves.toBeUndefined();
    expect(kube.calls.filter((c) => c.resource === RESOURCES.event.plural)).toHaveLength(1);
  });
});
