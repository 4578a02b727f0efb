// The token Secret check of a reconcile: does the Secret exist, does it hold tokens under the
// key, and what is their hash (a new token must roll the pods). Secrets are not watched (that
// would need list/watch on every Secret of the cluster), so each check reads the Secret; this
// keeps, for a short while, what such a read found: per Secret its resourceVersion and a hash of
// each key's value, never the values themselves (ADR 0009). Every ArcDeployment of a namespace
// usually shares one Secret, and one ArcDeployment is reconciled several times in a row while it
// converges: without this the API server answers the same GET again and again. Concurrent
// checks of one Secret share one request. A missing Secret is never remembered: its creation is
// seen at the next check.
import { createHash } from 'node:crypto';
import { RESOURCES } from './kube.ts';
import type { KubeClient } from './kube.ts';
import type { SecretCheck } from './status.ts';
import type { Clock } from '@arcops/common';
import { objectKey } from './types.ts';
import type { ObservedSecret } from './types.ts';

export interface SecretFacts {
  resourceVersion: string | undefined;
  /** Per key: a hash of its value, or null when the value is blank. */
  hashes: ReadonlyMap<string, string | null>;
}

export interface SecretCheckResult {
  check: SecretCheck;
  tokenHash?: string;
}

function factsOf(secret: ObservedSecret): SecretFacts {
  const hashes = new Map<string, string | null>();
  for (const [key, value] of Object.entries(secret.data ?? {})) {
    const blank = Buffer.from(value, 'base64').toString('utf8').trim() === '';
    hashes.set(key, blank ? null : createHash('sha256').update(value).digest('hex').slice(0, 16));
  }
  return { resourceVersion: secret.metadata?.resourceVersion, hashes };
}

export interface SecretCheckerOptions {
  client: KubeClient;
  clock: Clock;
  /** How long what a read found is used again; 0 = read on every check. */
  ttlMs: number;
}

export class SecretChecker {
  private readonly o: SecretCheckerOptions;
  private readonly found = new Map<string, { at: number; facts: SecretFacts }>();
  private readonly inFlight = new Map<string, Promise<SecretFacts | undefined>>();

  constructor(options: SecretCheckerOptions) {
    this.o = options;
  }

  async check(namespace: string, name: string, key: string): Promise<SecretCheckResult> {
    const facts = await this.facts(namespace, name);
    if (facts === undefined) return { check: { state: 'missing', name } };
    const hash = facts.hashes.get(key);
    if (hash === undefined || hash === null) return { check: { state: 'keyMissing', name, key } };
    return { check: { state: 'ok' }, tokenHash: hash };
  }

  /** Forgets everything (the next check of every Secret reads it). */
  clear(): void {
    this.found.clear();
  }

  private facts(namespace: string, name: string): Promise<SecretFacts | undefined> {
    const id = objectKey(namespace, name);
    const now = this.o.clock.now();
    const known = this.found.get(id);
    if (known !== undefined && now - known.at < this.o.ttlMs) return Promise.resolve(known.facts);
    this.found.delete(id);
    let pending = this.inFlight.get(id);
    if (pending === undefined) {
      pending = this.read(id, namespace, name).finally(() => this.inFlight.delete(id));
      this.inFlight.set(id, pending);
    }
    return pending;
  }

  private async read(id: string, namespace: string, name: string): Promise<SecretFacts | undefined> {
    const at = this.o.clock.now();
    const secret = await this.o.client.get<ObservedSecret>(RESOURCES.secret, namespace, name);
    if (secret === undefined) return undefined;
    const facts = factsOf(secret);
    if (this.o.ttlMs > 0) {
      for (const [other, entry] of this.found) if (at - entry.at >= this.o.ttlMs) this.found.delete(other);
      this.found.set(id, { at, facts });
    }
    return facts;
  }
}
