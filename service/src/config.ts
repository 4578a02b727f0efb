import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { type Env, EnvReader } from '@arcops/common';
import { ConfigError } from './errors.ts';

export interface ServiceConfig {
  readonly port: number;
  readonly host: string;
  /** Tokens from ARC_API_TOKENS / ARC_API_TOKENS_FILE; empty means "generate one at start". */
  readonly apiTokens: readonly string[];
  readonly duckdbPath: string;
  readonly dataDir: string | undefined;
  readonly demoData: boolean;
  readonly poolSize: number;
  readonly poolTimeoutMs: number;
  readonly maxQueue: number;
  readonly largeResultRows: number;
  readonly queryTimeoutMs: number;
  /** ARC_MAX_RESULT_ROWS / ARC_MAX_RESULT_BYTES: an answer beyond them fails (off when undefined). */
  readonly maxResultRows: number | undefined;
  readonly maxResultBytes: number | undefined;
  /** Prepared plans kept per connection for repeated SQL that reads only tables; 0: none. */
  readonly planCacheSize: number;
  readonly memoryLimit: string | undefined;
  /** DuckDB's max_temp_directory_size: how much it may spill to tempDir (DUCKDB_MAX_TEMP_SIZE). */
  readonly maxTempSize: string | undefined;
  readonly threads: number | undefined;
  readonly logLevel: string;
  readonly threadpoolSize: number;
  /** True when UV_THREADPOOL_SIZE was not set and main.ts must set it before any I/O. */
  readonly threadpoolSizeDefaulted: boolean;
  readonly shutdownGraceMs: number;
  readonly bodyLimitBytes: number;
  readonly tempDir: string;
}

/** Threads each pool connection may block, plus room for file I/O, DNS and health checks. */
export const THREADPOOL_HEADROOM = 4;
const THREADPOOL_MIN_HEADROOM = 2;


/** Tokens of ARC_API_TOKENS: separated by commas or line breaks; every other character is the token's. */
function parseTokens(list: string): string[] {
  return list
    .split(/[,\n]/)
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

/** Tokens of a token file: one or more per line, and lines that start with # are comments. */
function parseTokenFile(text: string): string[] {
  return parseTokens(
    text
      .split('\n')
      .filter((line) => !line.trimStart().startsWith('#'))
      .join('\n'),
  );
}

function readTokens(r: EnvReader): string[] {
  const inline = r.optStr('ARC_API_TOKENS');
  const tokens = inline === undefined ? [] : parseTokens(inline);
  if (inline !== undefined && tokens.length === 0) r.problems.push('ARC_API_TOKENS is set but holds no token');
  const file = r.optStr('ARC_API_TOKENS_FILE');
  if (file !== undefined) {
    try {
      const fromFile = parseTokenFile(readFileSync(file, 'utf8'));
      if (fromFile.length === 0) r.problems.push(`ARC_API_TOKENS_FILE ${file} holds no token (lines starting with # are comments)`);
      tokens.push(...fromFile);
    } catch (err) {
      r.problems.push(`ARC_API_TOKENS_FILE ${file} cannot be read: ${(err as Error).message}`);
    }
  }
  for (const t of tokens) {
    if (t.length < 8) r.problems.push('API tokens must be at least 8 characters long');
    if (/\s/.test(t)) r.problems.push('API tokens must not contain whitespace');
  }
  return [...new Set(tokens)];
}

function statOf(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function accessible(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

/**
 * The folders and files the configuration names, as this machine has them: ARC_DATA_DIR must be
 * a readable folder, DUCKDB_PATH a database file (or none yet) in a writable folder, and
 * DUCKDB_TEMP_DIR a folder that is or can be made. Separate from loadConfig, which only reads
 * the environment, so that a configuration can be checked away from the machine it is for.
 * Throws one ConfigError listing every problem.
 */
export function checkConfigPaths(config: ServiceConfig): void {
  const problems: string[] = [];
  if (config.dataDir !== undefined) checkDataDir(problems, config.dataDir);
  checkDatabasePath(problems, config.duckdbPath === ':memory:' ? config.duckdbPath : resolve(config.duckdbPath));
  checkTempDir(problems, config.tempDir);
  if (problems.length > 0) throw new ConfigError(problems);
}

/** ARC_DATA_DIR: an existing folder the service can list and read. */
function checkDataDir(r: string[], dir: string): void {
  const st = statOf(dir);
  if (st === undefined) r.push(`ARC_DATA_DIR ${dir} does not exist`);
  else if (!st.isDirectory()) r.push(`ARC_DATA_DIR ${dir} is not a folder`);
  else if (!accessible(dir, constants.R_OK | constants.X_OK)) r.push(`ARC_DATA_DIR ${dir} cannot be read by this user`);
}

/** DUCKDB_PATH: ':memory:', or a database file (or none yet) in an existing, writable folder. */
function checkDatabasePath(r: string[], path: string): void {
  if (path === ':memory:') return;
  const st = statOf(path);
  if (st !== undefined && !st.isFile()) r.push(`DUCKDB_PATH ${path} is not a file`);
  const parent = statOf(dirname(path));
  if (parent === undefined || !parent.isDirectory()) r.push(`DUCKDB_PATH ${path}: the folder ${dirname(path)} does not exist`);
  else if (!accessible(dirname(path), constants.W_OK | constants.X_OK)) r.push(`DUCKDB_PATH ${path}: the folder ${dirname(path)} is not writable by this user`);
}

/** DUCKDB_TEMP_DIR: a writable folder, or one that can be made under the nearest existing one. */
function checkTempDir(r: string[], dir: string): void {
  let existing = dir;
  while (statOf(existing) === undefined && dirname(existing) !== existing) existing = dirname(existing);
  const st = statOf(existing);
  if (st === undefined || !st.isDirectory()) {
    r.push(`DUCKDB_TEMP_DIR ${dir} cannot be a folder: ${existing} is not one`);
  } else if (!accessible(existing, constants.W_OK | constants.X_OK)) {
    r.push(`DUCKDB_TEMP_DIR ${dir}: ${existing} is not writable by this user`);
  }
}

/**
 * Reads the service's environment once, validates it, and returns a frozen config. Throws one
 * ConfigError listing every problem.
 */
export function loadConfig(env: Env): ServiceConfig {
  const r = new EnvReader(env);
  const poolSize = r.int('DUCKDB_POOL_SIZE', 5, 1, 256);
  const duckdbPath = r.str('DUCKDB_PATH', ':memory:');
  const dataDirRaw = r.optStr('ARC_DATA_DIR');
  const dataDir = dataDirRaw === undefined ? undefined : resolve(dataDirRaw);
  if (dataDirRaw !== undefined && !isAbsolute(dataDirRaw) && dataDirRaw.startsWith('~')) {
    r.problems.push('ARC_DATA_DIR must be a path, "~" is not expanded');
  }
  const demoRaw = r.str('ARC_DEMO_DATA', 'auto');
  if (!['auto', 'true', 'false'].includes(demoRaw)) {
    r.problems.push(`ARC_DEMO_DATA must be auto, true or false, got ${JSON.stringify(demoRaw)}`);
  }
  const demoData =
    demoRaw === 'true' || (demoRaw === 'auto' && duckdbPath === ':memory:' && dataDir === undefined);

  const threadsRaw = r.optStr('DUCKDB_THREADS');
  const threads = threadsRaw === undefined ? undefined : r.int('DUCKDB_THREADS', 1, 1, 1024);
  const maxTempSize = r.optStr('DUCKDB_MAX_TEMP_SIZE');
  if (maxTempSize !== undefined && !/^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i.test(maxTempSize)) {
    r.problems.push(`DUCKDB_MAX_TEMP_SIZE must look like 1073741824B, 512MB or 2GiB, got ${JSON.stringify(maxTempSize)}`);
  }
  const memoryLimit = r.optStr('DUCKDB_MEMORY_LIMIT');
  if (memoryLimit !== undefined && !/^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|%)$/i.test(memoryLimit)) {
    r.problems.push(`DUCKDB_MEMORY_LIMIT must look like 512MB, 2GiB or 80%, got ${JSON.stringify(memoryLimit)}`);
  }
  const logLevel = r.logLevel();

  const required = poolSize + THREADPOOL_MIN_HEADROOM;
  const uvRaw = r.optStr('UV_THREADPOOL_SIZE');
  const threadpoolSize = uvRaw === undefined ? Math.min(1024, poolSize + THREADPOOL_HEADROOM) : r.int('UV_THREADPOOL_SIZE', 4, 1, 1024);
  if (uvRaw !== undefined && threadpoolSize < required) {
    r.problems.push(
      `UV_THREADPOOL_SIZE=${threadpoolSize} is too small for DUCKDB_POOL_SIZE=${poolSize}: every running query holds a libuv thread, ` +
        `so a full pool would starve file I/O and health checks. Set it to at least ${required} (recommended ${poolSize + THREADPOOL_HEADROOM}) or leave it unset.`,
    );
  }

  const config: ServiceConfig = {
    port: r.int('PORT', 8000, 0, 65535),
    host: r.str('HOST', '0.0.0.0'),
    apiTokens: readTokens(r),
    duckdbPath,
    dataDir,
    demoData,
    poolSize,
    poolTimeoutMs: r.seconds('DUCKDB_POOL_TIMEOUT', 5, 0.1, 3600),
    maxQueue: r.int('DUCKDB_MAX_QUEUE', 1000, 0, 1_000_000),
    largeResultRows: r.int('DUCKDB_LARGE_RESULT_ROWS', 5000, 1, 1_000_000_000),
    queryTimeoutMs: r.seconds('DUCKDB_QUERY_TIMEOUT', 300, 0.1, 86_400),
    maxResultRows: r.optStr('ARC_MAX_RESULT_ROWS') === undefined ? undefined : r.int('ARC_MAX_RESULT_ROWS', 0, 1, Number.MAX_SAFE_INTEGER),
    maxResultBytes: r.optStr('ARC_MAX_RESULT_BYTES') === undefined ? undefined : r.int('ARC_MAX_RESULT_BYTES', 0, 1024, Number.MAX_SAFE_INTEGER),
    planCacheSize: r.int('DUCKDB_PLAN_CACHE_SIZE', 64, 0, 10_000),
    memoryLimit,
    maxTempSize,
    threads,
    logLevel,
    threadpoolSize,
    threadpoolSizeDefaulted: uvRaw === undefined,
    shutdownGraceMs: r.seconds('SHUTDOWN_GRACE_SECONDS', 25, 0, 3600),
    bodyLimitBytes: r.int('ARC_BODY_LIMIT_BYTES', 1024 * 1024, 1024, 64 * 1024 * 1024),
    tempDir: resolve(r.str('DUCKDB_TEMP_DIR', resolve(r.str('TMPDIR', '/tmp'), 'arc-duckdb'))),
  };
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return Object.freeze(config);
}
