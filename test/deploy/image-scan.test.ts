// hack/image-scan.ts reads a built image's files from `docker export | tar -t`. The listing is
// parsed here without Docker; the scan of real images runs in the real-node tier
// (test/e2e/e2e.sh --real-node: a tag with a forbidden module baked in must be flagged).
import { describe, expect, it } from 'vitest';
import { DEFAULT_FORBIDDEN_MODULES } from '../../common/src/condition.ts';
import { compileGlobs } from '../../sidecar/src/glob.ts';
import { tarPaths } from '../../hack/image-scan.ts';

describe('tarPaths', () => {
  it('turns a tar listing into absolute file paths, folders left out', () => {
    const listing = ['.dockerenv', 'app/', 'app/service/', 'app/service/dist/main.js', './usr/local/bin/node', 'etc/passwd', ''].join('\n');
    expect(tarPaths(listing)).toEqual(['/.dockerenv', '/app/service/dist/main.js', '/usr/local/bin/node', '/etc/passwd']);
  });

  it('gives paths the forbidden-module patterns match, as in the images', () => {
    const forbidden = compileGlobs(DEFAULT_FORBIDDEN_MODULES);
    const files = tarPaths('app/service/dist/duckdb_pool_simple.js\napp/api/__pycache__/duckdb_pool_simple.cpython-311.pyc\napp/service/dist/pool.js\n');
    expect(files.filter((f) => forbidden.matches(f))).toEqual(['/app/service/dist/duckdb_pool_simple.js', '/app/api/__pycache__/duckdb_pool_simple.cpython-311.pyc']);
  });
});
