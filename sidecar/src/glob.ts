/**
 * Small glob matcher for FORBIDDEN_MODULES (no dependency, no experimental API):
 *   `*` any characters but `/`, `?` one character but `/`, `[abc]` / `[!abc]` a class,
 *   `{a,b}` alternatives, `**` as a whole path segment zero or more segments.
 * A pattern without `/` matches the file name anywhere (like .gitignore); otherwise it matches
 * the whole path relative to the scanned root (a leading `/` is ignored), and absolute paths
 * (loaded modules) are matched without their leading `/`.
 */
export interface GlobSet {
  readonly patterns: readonly string[];
  /** True when `path` (relative, or absolute) matches any pattern. */
  matches(path: string): boolean;
  /** Cheap prefilter on a file name: false means no pattern can match a path ending in it. */
  mayMatchName(name: string): boolean;
}

function escapeChar(c: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
}

/** Translates one segment-level piece of glob (no `**` handling) starting at `i`. */
function translate(glob: string): string {
  let out = '';
  let inBraces = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '\\' && i + 1 < glob.length) {
      out += escapeChar(glob[++i]!);
    } else if (c === '*') {
      out += '[^/]*';
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end === -1) {
        out += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, end);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      out += `[${negate ? '^' : ''}${body.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '{') {
      inBraces++;
      out += '(?:';
    } else if (c === '}' && inBraces > 0) {
      inBraces--;
      out += ')';
    } else if (c === ',' && inBraces > 0) {
      out += '|';
    } else {
      out += escapeChar(c);
    }
  }
  if (inBraces > 0) throw new Error(`unbalanced "{" in ${JSON.stringify(glob)}`);
  return out;
}

/** Compiles one glob into a RegExp over `/`-separated relative paths. */
export function globToRegExp(pattern: string): RegExp {
  const trimmed = pattern.trim().replace(/^\/+/, '');
  if (trimmed === '') throw new Error('empty pattern');
  const segments = trimmed.split('/');
  let re = '';
  segments.forEach((seg, i) => {
    const last = i === segments.length - 1;
    if (seg === '**') {
      re += last ? '.*' : '(?:[^/]+/)*';
    } else {
      re += translate(seg) + (last ? '' : '/');
    }
  });
  return new RegExp(`^${re}$`);
}

function nameRegExp(pattern: string): RegExp | undefined {
  const trimmed = pattern.trim().replace(/^\/+/, '');
  const lastSeg = trimmed.split('/').pop() ?? '';
  if (lastSeg === '**' || lastSeg.includes('{')) return undefined;
  return new RegExp(`^${translate(lastSeg)}$`);
}

/** Compiles patterns once; throws an Error naming the first invalid pattern. */
export function compileGlobs(patterns: readonly string[]): GlobSet {
  const full: RegExp[] = [];
  const byName: RegExp[] = [];
  const names: Array<RegExp | undefined> = [];
  for (const p of patterns) {
    let re: RegExp;
    try {
      re = globToRegExp(p);
    } catch (err) {
      throw new Error(`invalid pattern ${JSON.stringify(p)}: ${(err as Error).message}`, { cause: err });
    }
    if (p.includes('/')) full.push(re);
    else byName.push(re);
    names.push(nameRegExp(p));
  }
  const alwaysMaybe = names.some((n) => n === undefined);
  const nameFilters = names.filter((n): n is RegExp => n !== undefined);
  return {
    patterns: [...patterns],
    matches(path: string): boolean {
      const rel = path.replace(/\\/g, '/').replace(/^\/+/, '');
      const slash = rel.lastIndexOf('/');
      const name = slash === -1 ? rel : rel.slice(slash + 1);
      return byName.some((re) => re.test(name)) || full.some((re) => re.test(rel));
    },
    mayMatchName(name: string): boolean {
      return alwaysMaybe || nameFilters.some((re) => re.test(name));
    },
  };
}
