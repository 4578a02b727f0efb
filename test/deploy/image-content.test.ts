// What each image of the root Dockerfile would contain (hack/image-files.ts: build context minus
// .dockerignore, a fresh tsc -b in a temporary folder, production dependencies only), checked
// against the forbidden-module patterns. The planted-file cases work on a temporary copy of the
// tree, never on the real one.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../hack/sync-manifests.ts';
import { TARGETS, contextFiles, dockerignore, listImages, parseDockerfile } from '../../hack/image-files.ts';
import type { ImageListing } from '../../hack/image-files.ts';

const OTHER = { service: ['sidecar', 'operator'], sidecar: ['service', 'operator'], operator: ['service', 'sidecar'] } as const;

describe('the images of the real tree', () => {
  let images: ImageListing[] = [];
  beforeAll(() => {
    images = listImages(REPO_ROOT);
  }, 120_000);

  it.each(TARGETS)('%s holds no forbidden module', (target) => {
    expect(images.find((i) => i.target === target)?.forbidden).toEqual([]);
  });

  it.each(TARGETS)('%s holds its compiled entrypoint, common, production dependencies and nothing of the other parts', (target) => {
    const files = images.find((i) => i.target === target)?.files ?? [];
    expect(files).toContain(`/app/${target}/dist/main.js`);
    expect(files).toContain(`/app/${target}/package.json`);
    expect(files).toContain('/app/common/dist/index.js');
    expect(files).toContain('/app/node_modules/pino/package.json');
    for (const other of OTHER[target]) expect(files.filter((f) => f.startsWith(`/app/${other}/`))).toEqual([]);
    // No sources, tests or development tools.
    expect(files.filter((f) => /^\/app\/[^/]+\/src\//.test(f) || f.startsWith('/app/test/'))).toEqual([]);
    for (const dev of ['typescript', 'vitest', 'eslint', 'autocannon', 'node']) {
      expect(files.some((f) => f.startsWith(`/app/node_modules/${dev}/`)), dev).toBe(false);
    }
  });

  it('puts the DuckDB bindings only into the service image, the Kubernetes client not into it', () => {
    const has = (t: string, pkg: string): boolean => (images.find((i) => i.target === t)?.files ?? []).some((f) => f.startsWith(`/app/node_modules/${pkg}/`));
    expect(has('service', '@duckdb/node-api')).toBe(true);
    expect(has('operator', '@duckdb/node-api')).toBe(false);
    expect(has('sidecar', '@duckdb/node-api')).toBe(false);
    expect(has('service', '@kubernetes/client-node')).toBe(false);
    expect(has('operator', '@kubernetes/client-node')).toBe(true);
    // The sidecar and the operator serve a few small routes on node:http (ADRs 0009, 0010):
    // fastify stays out of both.
    expect(has('service', 'fastify')).toBe(true);
    expect(has('sidecar', 'fastify')).toBe(false);
    expect(has('operator', 'fastify')).toBe(false);
  });
});

describe('a forbidden module planted in a copy of the tree', () => {
  const copy = mkdtempSync(join(tmpdir(), 'arc-image-tree-'));
  beforeAll(() => {
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.base.json', 'tsconfig.build.json', 'Dockerfile', '.dockerignore']) cpSync(join(REPO_ROOT, f), join(copy, f));
    for (const dir of ['common', 'service', 'sidecar', 'operator']) {
      cpSync(join(REPO_ROOT, dir), join(copy, dir), { recursive: true, filter: (src) => !/\/(dist|node_modules)(\/|$)/.test(src) });
    }
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(copy, 'node_modules'));
  });
  afterAll(() => rmSync(copy, { recursive: true, force: true }));

  it('is caught when it is compiled into an image (duckdb_pool_simple.ts becomes dist/duckdb_pool_simple.js)', () => {
    writeFileSync(join(copy, 'service/src/duckdb_pool_simple.ts'), 'export const broken = true;\n');
    try {
      const [service] = listImages(copy, ['service']);
      expect(service?.forbidden).toEqual(['/app/service/dist/duckdb_pool_simple.js']);
    } finally {
      rmSync(join(copy, 'service/src/duckdb_pool_simple.ts'));
    }
  }, 120_000);

  it('cannot get in as stale build output or a stray file: the image is built from sources only', () => {
    mkdirSync(join(copy, 'service/dist'), { recursive: true });
    writeFileSync(join(copy, 'service/dist/duckdb_pool_simple.js'), 'module.exports = {};\n');
    writeFileSync(join(copy, 'service/src/duckdb_pool_simple.js'), 'module.exports = {};\n');
    mkdirSync(join(copy, 'service/api/__pycache__'), { recursive: true });
    writeFileSync(join(copy, 'service/api/__pycache__/duckdb_pool_simple.cpython-311.pyc'), '');
    const [service] = listImages(copy, ['service']);
    expect(service?.forbidden).toEqual([]);
    expect(service?.files).toContain('/app/service/dist/main.js');
  }, 120_000);

  it('is flagged when a Dockerfile copies it in from the context', () => {
    writeFileSync(join(copy, 'service/duckdb_pool_simple.js'), 'module.exports = {};\n');
    const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
    writeFileSync(join(copy, 'Dockerfile'), `${dockerfile}\nFROM service AS careless\nCOPY service/duckdb_pool_simple.js ./\n`);
    try {
      expect(parseDockerfile(readFileSync(join(copy, 'Dockerfile'), 'utf8')).at(-1)?.name).toBe('careless');
      const [careless] = listImages(copy, ['careless']);
      expect(careless?.forbidden).toEqual(['/app/service/duckdb_pool_simple.js']);
    } finally {
      writeFileSync(join(copy, 'Dockerfile'), dockerfile);
    }
  }, 120_000);
});

describe('.dockerignore', () => {
  it('keeps build output, dependencies, tests and local state out of the build context', () => {
    const files = contextFiles(REPO_ROOT);
    expect(files.filter((f) => /(^|\/)(dist|node_modules)\//.test(f) || /^(test|bench|\.cluster|\.git)\//.test(f) || f.endsWith('.tsbuildinfo'))).toEqual([]);
    expect(files).toContain('service/src/pool.ts');
    expect(files).toContain('package-lock.json');
  });

  it('matches nested paths and honours exceptions', () => {
    const ignored = dockerignore('**/dist\ntest\n*.md\n!README.md\n');
    expect(ignored('service/dist/main.js')).toBe(true);
    expect(ignored('dist/x.js')).toBe(true);
    expect(ignored('test/a.test.ts')).toBe(true);
    expect(ignored('service/test.ts')).toBe(false);
    expect(ignored('NOTES.md')).toBe(true);
    expect(ignored('README.md')).toBe(false);
  });
});


describe('Dockerfile', () => {
  const text = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const stage = (name: string): string => {
    const at = text.search(new RegExp(`^FROM \\S+ AS ${name}$`, 'm'));
    if (at < 0) throw new Error(`no stage ${name}`);
    const next = text.slice(at + 1).search(/^FROM /m);
    return next < 0 ? text.slice(at) : text.slice(at, at + 1 + next);
  };

  it('builds on Node 24 and compiles with tsc -b after a full npm ci', () => {
    expect(text).toMatch(/^ARG NODE_IMAGE=node:24[-.\w]*$/m);
    expect(stage('build')).toMatch(/RUN npm ci\b/);
    expect(stage('build')).toMatch(/RUN npx tsc -b tsconfig\.build\.json/);
  });

  it.each(TARGETS)('%s: production dependencies of its workspace only, non-root, labelled, on the runtime base', (target) => {
    expect(stage(`${target}-deps`)).toMatch(new RegExp(`npm ci --omit=dev .*--workspace @arcops/${target}$`, 'm'));
    expect(stage(target)).toMatch(/^FROM runtime AS/m);
    // Node flags may come before the entrypoint (the sidecar's lite mode: bench/sidecar.ts reads them from here).
    expect(stage(target)).toMatch(/^ENTRYPOINT \["node", (?:"--[-\w=]+", )*"dist\/main\.js"\]$/m);
    const runtime = stage('runtime');
    expect(runtime).toMatch(/^USER 65532:65532$/m);
    expect(runtime).toMatch(/org\.opencontainers\.image\.version="\$\{VERSION\}"/);
    expect(runtime).toMatch(/org\.opencontainers\.image\.revision="\$\{REVISION\}"/);
    expect(runtime).toMatch(/HOME=\/tmp/);
  });
});
