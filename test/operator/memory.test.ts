// The memory trimmer's decisions (pure logic, with a fake clock, memory reader and collection),
// and, in a real child process, that the API client lets go of what it read. What a last-resort
// collection gives back is V8's behaviour, measured in bench/operator-memory.ts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryTrimmer } from '../../operator/src/memory.ts';
import { FakeClock } from '../support/fake-clock.ts';
import { silentLogger } from './fixtures.ts';

const MB = 1024 * 1024;

/** A trimmer started at `startMb` of anonymous memory; a collection brings it down to `settlesMb`. */
function harness(startMb: number, settlesMb: number) {
  const clock = new FakeClock();
  const state = { reconciles: 0, collections: 0, memory: { anonymous: startMb * MB, heapTotal: 40 * MB, external: 3 * MB } };
  const trimmer = new MemoryTrimmer({
    collect: () => {
      state.collections++;
      state.memory = { ...state.memory, anonymous: settlesMb * MB };
    },
    reconciles: () => state.reconciles,
    memory: () => state.memory,
    clock,
    logger: silentLogger,
  });
  trimmer.start();
  const at = (mb: number): void => {
    state.memory = { ...state.memory, anonymous: mb * MB };
  };
  const after = (ms: number): void => {
    clock.set(clock.now() + ms);
    trimmer.tick();
  };
  return { clock, state, trimmer, at, after };
}

describe('MemoryTrimmer', () => {
  it('releases once after a busy period, when idle for 10 s and memory grew by 32 MB or more', () => {
    const h = harness(70, 150);
    h.state.reconciles = 3000;
    h.at(290);
    h.after(5_000); // sees the work
    h.after(9_000);
    expect(h.state.collections).toBe(0); // not idle long enough
    h.after(2_000);
    expect(h.state.collections).toBe(1);
    h.after(60_000);
    h.after(60_000);
    expect(h.state.collections).toBe(1); // what it could not give back is the new floor
    h.trimmer.stop();
  });

  it('leaves memory alone that grew little', () => {
    const h = harness(150, 120);
    h.state.reconciles = 1000; // a resync
    h.at(175);
    h.after(5_000);
    h.after(60_000);
    expect(h.state.collections).toBe(0);
    h.trimmer.stop();
  });

  it('trims a standby, which never reconciles, once its caches are filled', () => {
    const h = harness(70, 190);
    h.at(340); // lists of thousands of objects
    h.after(5_000);
    expect(h.state.collections).toBe(0); // 10 s after the start at the earliest
    h.after(5_000);
    expect(h.state.collections).toBe(1);
    h.after(60_000);
    expect(h.state.collections).toBe(1);
    h.trimmer.stop();
  });

  it('waits while work goes on, measures growth from the lowest it saw, and releases after each busy period that grew', () => {
    const h = harness(70, 150);
    for (let i = 1; i <= 10; i++) {
      h.state.reconciles += 50;
      h.at(100 + i * 20);
      h.after(5_000);
    }
    expect(h.state.collections).toBe(0); // never idle
    h.after(11_000);
    expect(h.state.collections).toBe(1); // settled at 150
    h.at(140); // V8 gave some back on its own: the floor follows it down
    h.after(5_000);
    h.state.reconciles += 1000; // a resync
    h.at(175); // 35 MB above the lowest seen
    h.after(5_000);
    h.after(11_000);
    expect(h.state.collections).toBe(2);
    h.trimmer.stop();
  });

  it('does nothing when gc is not exposed', () => {
    const clock = new FakeClock();
    const trimmer = new MemoryTrimmer({ collect: undefined, reconciles: () => 0, memory: () => ({ anonymous: 900 * MB, heapTotal: 0, external: 0 }), clock, logger: silentLogger });
    trimmer.start();
    clock.set(clock.now() + 60_000);
    trimmer.tick();
    expect(trimmer.releases).toBe(0);
  });
});

describe('a list read over a keep-alive HTTPS connection, in a real node process', () => {
  it('is not kept once it has been used', () => {
    // Node's https.Agent keeps the request that opened a socket reachable while the socket
    // lives; before operator/src/kube.ts let go of its promise and chunks, every keep-alive
    // socket held the body of its first response (megabytes for a page of a list).
    const dir = mkdtempSync(join(tmpdir(), 'arc-kube-memory-'));
    try {
      const key = join(dir, 'key.pem');
      const cert = join(dir, 'cert.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
      const kube = new URL('../../operator/src/kube.ts', import.meta.url).pathname;
      const script = `
        import https from 'node:https';
        import { readFileSync } from 'node:fs';
        import { HttpKubeClient, RESOURCES } from ${JSON.stringify(kube)};
        const cert = readFileSync(${JSON.stringify(cert)}, 'utf8');
        const key = readFileSync(${JSON.stringify(key)}, 'utf8');
        const items = Array.from({ length: 20000 }, (_, i) => ({ metadata: { name: 'pod-' + i, namespace: 'ns', labels: { note: 'x'.repeat(250) } } }));
        const body = JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items });
        const server = https.createServer({ cert, key }, (req, res) => { res.setHeader('content-type', 'application/json'); res.end(body); });
        await new Promise((r) => server.listen(0, '127.0.0.1', r));
        const client = new HttpKubeClient({
          server: () => 'https://127.0.0.1:' + server.address().port,
          authorize: async (o) => { o.ca = cert; },
          proxied: () => false,
        });
        const held = () => { globalThis.gc(); globalThis.gc(); const u = process.memoryUsage(); return u.heapUsed + u.external; };
        const before = held();
        // Three lists at once open three sockets, each first used by one of them.
        const pages = await Promise.all([0, 1, 2].map(() => client.list(RESOURCES.pod, {})));
        if (pages.some((p) => p.items.length !== items.length)) throw new Error('short list');
        pages.length = 0;
        const after = held();
        console.log(JSON.stringify({ bodyBytes: body.length, before, after }));
        client.close();
        server.close();
        process.exit(0);
      `;
      const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8' });
      const { bodyBytes, before, after } = JSON.parse(out) as { bodyBytes: number; before: number; after: number };
      const figures = `bodies of ${Math.round(bodyBytes / MB)} MB each; heap + external ${Math.round(before / MB)} MB before three lists, ${Math.round(after / MB)} MB after`;
      expect(bodyBytes, figures).toBeGreaterThan(5 * MB);
      expect(after - before, figures).toBeLessThan(bodyBytes / 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
