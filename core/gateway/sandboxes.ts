import type { ConfigInput } from '../config/types.ts';
import type { CompiledConfig } from '../config/compile.ts';
import type { Snapshot } from '../snapshot.ts';
import { SnapshotBuilder, type SnapshotBuilderDeps } from '../snapshot-builder.ts';
import { WarmIsolates } from '../../sandbox/blank.ts';
import { IsolatePool } from '../../sandbox/pool.ts';
import { Watchdog } from '../../sandbox/watchdog.ts';

/**
 * A gateway's plugin sandboxes and what they share: the watchdog thread that ends calls
 * over their limits, warm blank isolates, the isolate pool with its bounds, and the
 * snapshot builder that makes (or keeps) each tenant's sandbox for a config.
 */
export class GatewaySandboxes {
  readonly #watchdog = new Watchdog();
  readonly #warm = new WarmIsolates(2);
  readonly #pool: IsolatePool;
  readonly #builder: SnapshotBuilder;

  constructor(limits: ConfigInput['sandbox'], deps: Omit<SnapshotBuilderDeps, 'watchdog' | 'isolates' | 'warm'>) {
    this.#pool = new IsolatePool(limits.maxIsolates, limits.idleTimeoutMs, limits.maxTotalHeapMb);
    this.#builder = new SnapshotBuilder({ ...deps, watchdog: this.#watchdog, isolates: this.#pool, warm: this.#warm });
  }

  /** The snapshot of `compiled`, with its tenants' sandboxes. */
  build(compiled: CompiledConfig): Snapshot {
    return this.#builder.build(compiled);
  }

  /** Live plugin isolates. */
  live(): number {
    let n = 0;
    for (const _ of this.#pool.live()) n++;
    return n;
  }

  /** The heap the live isolates use, in bytes. */
  heapBytes(): number {
    let sum = 0;
    for (const sb of this.#pool.live()) sum += sb.heap()?.used ?? 0;
    return sum;
  }

  /** Quarantines plugin instances by key, in every sandbox now and in those built later. */
  quarantine(keys: readonly string[]): void {
    this.#builder.quarantine(keys);
  }

  /** Disposes the sandboxes `current` does not use. */
  freeUnused(current: Snapshot): void {
    this.#builder.freeUnused(current, (sb) => this.#pool.forget(sb));
  }

  /** Disposes every sandbox and isolate, then stops the watchdog (isolated-vm crashes if the process exits while its thread runs). */
  async close(): Promise<void> {
    this.#builder.disposeAll();
    this.#pool.close();
    this.#warm.close();
    await this.#watchdog.stop();
  }
}
