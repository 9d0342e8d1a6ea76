import type { ConfigInput } from '../config/types.ts';
import type { CompiledConfig } from '../config/compile.ts';
import type { Snapshot } from '../snapshot.ts';
import { SnapshotBuilder, type SnapshotBuilderDeps } from '../snapshot-builder.ts';
import { WarmIsolates } from '../../sandbox/blank.ts';
import { IsolatePool } from '../../sandbox/pool.ts';
import { Prewarmer } from '../../sandbox/prewarm.ts';
import { Watchdog } from '../../sandbox/watchdog.ts';

/**
 * A gateway's plugin sandboxes and what they share: the watchdog thread that ends calls
 * over their limits, warm blank isolates, the isolate pool with its bounds, and the
 * snapshot builder that makes (or keeps) each tenant's sandbox for a config, and the
 * pre-warmer that builds the first `sandbox.prewarm` tenants' isolates ahead of their
 * first request (sandbox/prewarm.ts).
 */
export class GatewaySandboxes {
  readonly #watchdog = new Watchdog();
  // Refills wait for a moment with no request in flight (bounded): see sandbox/blank.ts.
  readonly #warm = new WarmIsolates(2, () => (this.#last?.inflight ?? 0) > 0);
  readonly #pool: IsolatePool;
  readonly #builder: SnapshotBuilder;
  readonly #prewarmer: Prewarmer;
  /** The snapshot built last (the one serving, or about to). */
  #last: Snapshot | null = null;

  constructor(limits: ConfigInput['sandbox'], deps: Omit<SnapshotBuilderDeps, 'watchdog' | 'isolates' | 'warm'>) {
    this.#pool = new IsolatePool(limits.maxIsolates, limits.idleTimeoutMs, limits.maxTotalHeapMb);
    this.#builder = new SnapshotBuilder({ ...deps, watchdog: this.#watchdog, isolates: this.#pool, warm: this.#warm });
    const log = deps.log;
    this.#prewarmer = new Prewarmer(this.#pool, this.#warm, {
      onFailed: (tenant, message) => log.warn({ tenant }, `isolate pre-warm failed, its first request builds it: ${message}`),
      onDone: (built, stoppedBy) => log.info({ built, stoppedBy }, 'isolates pre-warmed'),
    });
  }

  /**
   * The snapshot of `compiled`, with its tenants' sandboxes. Keeps blank isolates ready for
   * each heap size the config uses, and starts pre-warming its first `sandbox.prewarm`
   * tenants in the background.
   */
  build(compiled: CompiledConfig): Snapshot {
    const s = this.#builder.build(compiled);
    this.#last = s;
    const { prewarm, maxIsolates } = compiled.input.sandbox;
    this.#warm.prime(new Set([...s.sandboxes.values()].map((sb) => sb.program.memoryMb)));
    if (prewarm > 0) void this.#prewarmer.start(s.sandboxes.values(), prewarm, maxIsolates);
    return s;
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
    this.#prewarmer.close();
    this.#builder.disposeAll();
    this.#pool.close();
    this.#warm.close();
    await this.#watchdog.stop();
  }
}
