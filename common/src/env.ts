/** The environment as config loaders read it: `process.env` in main.ts, a literal in tests. */
export type Env = Readonly<Record<string, string | undefined>>;

export const LOG_LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Reads typed settings from the environment and collects every problem instead of failing at
 * the first, so a config loader can throw one error that lists them all. Each deployable's
 * config.ts is the only place that uses it.
 */
export class EnvReader {
  readonly problems: string[] = [];
  private readonly env: Env;

  constructor(env: Env) {
    this.env = env;
  }

  /** The trimmed value, or undefined when unset or blank. */
  optStr(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  str(name: string, fallback: string): string {
    return this.optStr(name) ?? fallback;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.optStr(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(n)) {
      this.problems.push(`${name} must be an integer, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    if (n < min || n > max) {
      this.problems.push(`${name} must be between ${min} and ${max}, got ${n}`);
      return fallback;
    }
    return n;
  }

  /** A duration in seconds (decimals allowed), returned in milliseconds. */
  seconds(name: string, fallbackSeconds: number, min: number, max: number): number {
    const raw = this.optStr(name);
    if (raw === undefined) return Math.round(fallbackSeconds * 1000);
    const n = Number(raw);
    if (!/^\d+(\.\d+)?$/.test(raw) || !Number.isFinite(n)) {
      this.problems.push(`${name} must be a number of seconds, got ${JSON.stringify(raw)}`);
      return Math.round(fallbackSeconds * 1000);
    }
    if (n < min || n > max) {
      this.problems.push(`${name} must be between ${min} and ${max} seconds, got ${n}`);
      return Math.round(fallbackSeconds * 1000);
    }
    return Math.round(n * 1000);
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.optStr(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['on', 'true', '1', 'yes'].includes(raw)) return true;
    if (['off', 'false', '0', 'no'].includes(raw)) return false;
    this.problems.push(`${name} must be on or off, got ${JSON.stringify(raw)}`);
    return fallback;
  }

  logLevel(name = 'LOG_LEVEL', fallback = 'info'): string {
    const level = this.str(name, fallback);
    if (!LOG_LEVELS.includes(level)) {
      this.problems.push(`${name} must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
      return fallback;
    }
    return level;
  }
}
