import type { ConnectionFactory } from '../../service/src/pool.ts';

export interface FakeConn {
  id: number;
  closed: boolean;
  broken: boolean;
}

/**
 * A connection factory for pure pool-logic tests: creation can be made to fail, connections
 * can be marked broken, and it records misuse (closing a connection twice).
 */
export class FakeFactory implements ConnectionFactory<FakeConn> {
  created: FakeConn[] = [];
  failNextCreates = 0;
  doubleCloses = 0;
  pendingCreates: Array<() => void> = [];
  /** When set, create() waits until the test calls releaseCreates(). */
  holdCreates = false;

  async create(): Promise<FakeConn> {
    if (this.holdCreates) await new Promise<void>((resolve) => this.pendingCreates.push(resolve));
    if (this.failNextCreates > 0) {
      this.failNextCreates--;
      throw new Error('cannot connect');
    }
    const c = { id: this.created.length + 1, closed: false, broken: false };
    this.created.push(c);
    return c;
  }

  releaseCreates(): void {
    const p = this.pendingCreates;
    this.pendingCreates = [];
    for (const r of p) r();
  }

  async validate(conn: FakeConn): Promise<boolean> {
    return !conn.closed && !conn.broken;
  }

  destroy(conn: FakeConn): void {
    if (conn.closed) this.doubleCloses++;
    conn.closed = true;
  }

  get open(): number {
    return this.created.filter((c) => !c.closed).length;
  }
}
