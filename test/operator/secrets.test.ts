// The token Secret check (operator/src/secrets.ts): what a read found is used again for a short
// while, concurrent checks share one read, a missing Secret is never remembered, and no Secret
// value is kept, only hashes.
import { describe, expect, it } from 'vitest';
import { RESOURCES } from '../../operator/src/kube.ts';
import { SecretChecker } from '../../operator/src/secrets.ts';
import { FakeClock } from '../support/fake-clock.ts';
import { FakeKube } from './fake-kube.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function setup(ttlMs: number) {
  const kube = new FakeKube();
  const clock = new FakeClock();
  clock.set(Date.parse('2026-03-01T12:00:00Z'));
  const put = (data: Record<string, string>): unknown => kube.put(RESOURCES.secret, { metadata: { name: 'arc-tokens', namespace: 'team-a' }, data });
  const gets = (): number => kube.calls.filter((c) => c.method === 'get' && c.resource === 'secrets').length;
  return { kube, clock, put, gets, checker: new SecretChecker({ client: kube, clock, ttlMs }) };
}

describe('SecretChecker', () => {
  it('reads the Secret once within the cache time, again after it, and sees a new token then', async () => {
    const t = setup(10_000);
    t.put({ tokens: b64('token-one-123\n') });
    const first = await t.checker.check('team-a', 'arc-tokens', 'tokens');
    expect(first.check).toEqual({ state: 'ok' });
    t.put({ tokens: b64('token-two-456\n') });
    await t.clock.advance(9_000);
    expect(await t.checker.check('team-a', 'arc-tokens', 'tokens')).toEqual(first);
    expect(t.gets()).toBe(1);
    await t.clock.advance(1_000);
    const second = await t.checker.check('team-a', 'arc-tokens', 'tokens');
    expect(t.gets()).toBe(2);
    expect(second.check).toEqual({ state: 'ok' });
    expect(second.tokenHash).not.toBe(first.tokenHash);
  });

  it('shares one read between concurrent checks, whatever key they ask for', async () => {
    const t = setup(10_000);
    t.put({ tokens: b64('token-one-123'), other: b64('  \n') });
    const results = await Promise.all([
      t.checker.check('team-a', 'arc-tokens', 'tokens'),
      t.checker.check('team-a', 'arc-tokens', 'other'),
      t.checker.check('team-a', 'arc-tokens', 'absent'),
    ]);
    expect(t.gets()).toBe(1);
    expect(results.map((r) => r.check.state)).toEqual(['ok', 'keyMissing', 'keyMissing']);
  });

  it('never remembers a missing Secret: it is seen at the next check once created', async () => {
    const t = setup(10_000);
    expect((await t.checker.check('team-a', 'arc-tokens', 'tokens')).check).toEqual({ state: 'missing', name: 'arc-tokens' });
    t.put({ tokens: b64('token-one-123') });
    expect((await t.checker.check('team-a', 'arc-tokens', 'tokens')).check).toEqual({ state: 'ok' });
  });

  it('reads on every check with a cache time of 0', async () => {
    const t = setup(0);
    t.put({ tokens: b64('token-one-123') });
    await t.checker.check('team-a', 'arc-tokens', 'tokens');
    await t.checker.check('team-a', 'arc-tokens', 'tokens');
    expect(t.gets()).toBe(2);
  });

  it('keeps hashes, not the token values', async () => {
    const t = setup(10_000);
    t.put({ tokens: b64('token-one-123') });
    await t.checker.check('team-a', 'arc-tokens', 'tokens');
    const kept = JSON.stringify([...(t.checker as unknown as { found: Map<string, { facts: { hashes: Map<string, string> } }> }).found.values()].map((e) => [...e.facts.hashes]));
    expect(kept).not.toContain('token-one-123');
    expect(kept).not.toContain(b64('token-one-123'));
  });
});
