import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Checks API tokens in constant time against every configured token. */
export class TokenAuth {
  private readonly digests: Buffer[];

  constructor(tokens: readonly string[]) {
    if (tokens.length === 0) throw new Error('TokenAuth needs at least one token');
    this.digests = tokens.map(digest);
  }

  /** Makes a random token for a service started without one (it never runs open). */
  static generateToken(): string {
    return `arc_${randomBytes(24).toString('base64url')}`;
  }

  /** A short, stable name for a token that does not reveal it (the running-queries API shows it). */
  static fingerprint(token: string): string {
    return digest(token).toString('hex').slice(0, 12);
  }

  verify(token: string | undefined): boolean {
    if (token === undefined || token === '') return false;
    const d = digest(token);
    let ok = false;
    for (const known of this.digests) ok = timingSafeEqual(d, known) || ok;
    return ok;
  }
}

function digest(token: string): Buffer {
  return hash('sha256', token, 'buffer');
}

/**
 * The token of a request, as Arc reads it: `Authorization: Bearer T`, `Authorization: Token T`,
 * `Authorization: T` (no scheme), or `x-api-key: T`.
 */
export function tokenFromHeaders(headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === 'string') {
    const m = /^(?:Bearer|Token)\s+(\S+)\s*$/i.exec(auth);
    if (m !== null) return m[1];
    const raw = auth.trim();
    if (raw !== '' && !/\s/.test(raw)) return raw;
  }
  const key = headers['x-api-key'];
  if (typeof key === 'string' && key.trim() !== '') return key.trim();
  return undefined;
}
