import { LRUCache } from 'lru-cache';
import type { TenantSandbox } from './tenant-sandbox.ts';

/**
 * Bounds the live isolates: at most `maxIsolates`, their heap limits adding up to at most
 * `maxTotalHeapMb` (the worst case each may grow to), and none idle longer than
 * `idleTimeoutMs`. An evicted sandbox only loses its isolate; its next request creates a
 * new one (a cold start).
 */
export class IsolatePool {
  #lru: LRUCache<TenantSandbox, true>;
  #timer: NodeJS.Timeout | null = null;

  constructor(maxIsolates: number, idleTimeoutMs: number, maxTotalHeapMb = Number.MAX_SAFE_INTEGER) {
    this.#lru = new LRUCache<TenantSandbox, true>({
      max: maxIsolates,
      maxSize: maxTotalHeapMb,
      sizeCalculation: (_v, sandbox) => Math.min(sandbox.program.memoryMb, maxTotalHeapMb),
      ttl: idleTimeoutMs > 0 ? idleTimeoutMs : undefined,
      updateAgeOnGet: true,
      dispose: (_v, sandbox, reason) => {
        if (reason === 'evict' || reason === 'expire') sandbox.release(reason === 'evict' ? 'pool full' : 'idle');
      },
    });
    if (idleTimeoutMs > 0) {
      this.#timer = setInterval(() => this.#lru.purgeStale(), Math.min(idleTimeoutMs, 30_000));
      this.#timer.unref();
    }
  }

  /** Marks `sandbox` as used now (called before each call into it). */
  touch(sandbox: TenantSandbox): void {
    if (this.#lru.get(sandbox) === undefined) this.#lru.set(sandbox, true);
  }

  forget(sandbox: TenantSandbox): void {
    this.#lru.delete(sandbox);
  }

  get size(): number {
    return this.#lru.size;
  }

  *live(): IterableIterator<TenantSandbox> {
    for (const sb of this.#lru.keys()) if (sb.isLive) yield sb;
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#lru.clear();
  }
}
