import { DEFAULT_FORBIDDEN_MODULES } from '@arcops/common';
import { describe, expect, it } from 'vitest';
import { compileGlobs, globToRegExp } from '../../sidecar/src/glob.ts';

describe('forbidden-module globs', () => {
  const defaults = compileGlobs(DEFAULT_FORBIDDEN_MODULES);

  it.each<[string, boolean]>([
    ['api/duckdb_pool_simple.py', true],
    ['app/api/duckdb_pool_simple.py', true],
    ['/opt/arc/api/duckdb_pool_simple.py', true],
    ['api/__pycache__/duckdb_pool_simple.cpython-311.pyc', true],
    ['api/__pycache__/duckdb_pool_simple.pyc', true],
    ['dist/duckdb_pool_simple.js', true],
    ['duckdb_pool_simple.js', true],
    ['/app/service/dist/duckdb_pool_simple.mjs', true],
    ['lib/duckdb_pool_simple.cjs', true],
    ['src/duckdb_pool_simple.ts', true],
    // near misses: the fixed pool, other folders, other names
    ['api/duckdb_pool.py', false],
    ['other/duckdb_pool_simple.py', false],
    ['api/__pycache__/duckdb_pool.cpython-311.pyc', false],
    ['dist/duckdb_pool_simple.js.map', false],
    ['dist/duckdb_pool_simpler.js', false],
    ['dist/pool.js', false],
  ])('defaults: %s -> %s', (path, expected) => {
    expect(defaults.matches(path)).toBe(expected);
  });

  it.each<[string, string, boolean]>([
    ['*.pyc', 'a/b/c.pyc', true],
    ['*.pyc', 'a/b/c.py', false],
    ['a/*.js', 'a/x.js', true],
    ['a/*.js', 'a/b/x.js', false],
    ['a/**/x.js', 'a/x.js', true],
    ['a/**/x.js', 'a/b/c/x.js', true],
    ['a/**', 'a/b/c', true],
    ['a/**', 'b/a/c', false],
    ['pool_v?.js', 'pool_v2.js', true],
    ['pool_v?.js', 'pool_v10.js', false],
    ['pool.[cm]js', 'pool.mjs', true],
    ['pool.[!cm]js', 'pool.mjs', false],
    ['pool.{js,py}', 'x/pool.py', true],
    ['pool.{js,py}', 'x/pool.rb', false],
    ['a+b(c).js', 'a+b(c).js', true],
  ])('%s matches %s: %s', (pattern, path, expected) => {
    expect(compileGlobs([pattern]).matches(path)).toBe(expected);
  });

  it('prefilters on file names without false negatives', () => {
    for (const name of ['duckdb_pool_simple.py', 'duckdb_pool_simple.cpython-311.pyc', 'duckdb_pool_simple.js']) {
      expect(defaults.mayMatchName(name)).toBe(true);
    }
    expect(defaults.mayMatchName('index.js')).toBe(false);
    expect(compileGlobs(['a/**']).mayMatchName('anything')).toBe(true);
  });

  it('refuses malformed patterns with the pattern in the message', () => {
    expect(() => compileGlobs(['ok', 'a{b'])).toThrow('invalid pattern "a{b"');
    expect(() => globToRegExp('  ')).toThrow('empty pattern');
  });
});
