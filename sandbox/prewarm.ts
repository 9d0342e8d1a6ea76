import { setImmediate as nextTurn } from 'node:timers/promises';
import type { WarmIsolates } from './blank.ts';
import type { IsolatePool } from './pool.ts';
import type { TenantSandbox } from './tenant-sandbox.ts';

/** What the pre-warmer tells its owner. */
export type PrewarmEvents = {
  /** A tenant's isolate could not be built ahead (its first request will try again, as without pre-warming). */
  onFailed(tenant: string, message: string): void;
  /** A pass ended: how many isolates it built, and why it stopped early if it did. */
  onDone?(built: number, stoppedBy: 'limit' | 'heap' | null): void;
};

/**
 * Builds tenants' isolates at config load (`sandbox.prewarm`), before their first request,
 * so that none of those requests pays a cold start. Off the request path: one tenant per
 * turn of the event loop, requests served in between; the blank isolate of each is made
 * on isolated-vm's threads first (WarmIsolates.ready), so the gateway's thread only
 * constructs it and loads the plugins, under the watchdog and limits of any load. A
 * plugin whose module or configure fails is disabled and logged exactly as at a request
 * (the sandbox's own events). Bounded: at most `limit` isolates, never more than the
 * pool's `maxIsolates`, and it stops before the live heaps would pass the pool's
 * `maxTotalHeapMb`. Every isolate it builds is registered with the pool (LRU, idle
 * timeout), as a request's would be.
 */
export class Prewarmer {
  readonly #pool: IsolatePool;
  readonly #warm: WarmIsolates;
  readonly #events: PrewarmEvents;
  /** Bumped by each start and by close: a pass of an older config stops at its next turn. */
  #generation = 0;
  #running: Promise<void> = Promise.resolve();

  constructor(pool: IsolatePool, warm: WarmIsolates, events: PrewarmEvents) {
    this.#pool = pool;
    this.#warm = warm;
    this.#events = events;
  }

  /**
   * Builds the isolates of the first `limit` of `sandboxes` (config order) that have none
   * yet; a pass still running for an older config stops. Returns when this pass ends.
   */
  start(sandboxes: Iterable<TenantSandbox>, limit: number, maxIsolates: number): Promise<void> {
    const generation = ++this.#generation;
    const list = [...sandboxes].slice(0, Math.min(limit, maxIsolates));
    const previous = this.#running;
    // A bug of ours in a pass must not end the worker (an unhandled rejection would): reported, and requests build the rest.
    this.#running = previous.then(() => this.#pass(generation, list)).catch((err: unknown) => this.#events.onFailed('', `pre-warm pass stopped: ${String((err as Error)?.message).slice(0, 300)}`));
    return this.#running;
  }

  async #pass(generation: number, list: readonly TenantSandbox[]): Promise<void> {
    if (list.length === 0 || generation !== this.#generation) return;
    const bound = this.#pool.maxTotalHeapBytes;
    let heap = 0;
    for (const sb of this.#pool.live()) heap += heapBytes(sb);
    let built = 0;
    let largest = 0;
    let stoppedBy: 'heap' | null = null;
    for (const sb of list) {
      if (generation !== this.#generation) return;
      if (sb.isLive) continue;
      // Before building one more, leave room for one as large as the largest built so far.
      if (heap + largest > bound) {
        stoppedBy = 'heap';
        break;
      }
      await this.#warm.ready(sb.program.memoryMb);
      if (generation !== this.#generation) return;
      if (!sb.isLive) {
        try {
          sb.warm();
          sb.touchedAt = performance.now();
          this.#pool.touch(sb);
          const bytes = heapBytes(sb);
          heap += bytes;
          largest = Math.max(largest, bytes);
          built++;
        } catch (err) {
          this.#events.onFailed(sb.tenant, String((err as Error)?.message).slice(0, 300));
        }
      }
      await nextTurn(); // requests first
    }
    this.#events.onDone?.(built, stoppedBy);
  }

  /** Stops the pass under way at its next turn. */
  close(): void {
    this.#generation++;
  }
}

function heapBytes(sb: TenantSandbox): number {
  const h = sb.heap();
  return h === null ? 0 : h.used + h.external;
}
