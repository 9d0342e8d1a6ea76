import { LRUCache } from 'lru-cache';
import type { TenantSandbox } from './tenant-sandbox.ts';

/**
 * Bounds the live isolates: at most `maxIsolates`, their heaps adding up to at most
 * `maxTotalHeapMb` (measured every few seconds, least recently used evicted first), and
 * none idle longer than `idleTimeoutMs`. An evicted sandbox only loses its isolate; its
 * next request creates a new one (a cold start). Each isolate's own limit bounds how far
 * one can grow between two measurements.
 */
export class IsolatePool {
  #lru: LRUCache<TenantSandbox, true>;
  #timer: NodeJS.Timeout | null = null;

  #heapTimer: NodeJS.Timeout | null = null;
  readonly maxTotalHeapBytes: number;

  constructor(maxIsolates: number, idleTimeoutMs: number, maxTotalHeapMb = Number.MAX_SAFE_INTEGER, heapCheckMs = 5_000) {
    this.maxTotalHeapBytes = maxTotalHeapMb * 1024 * 1024;
    if (maxTotalHeapMb < Number.MAX_SAFE_INTEGER) {
      this.#heapTimer = setInterval(() => this.enforceHeapBound(), heapCheckMs);
      this.#heapTimer.unref();
    }
    this.#lru = new LRUCache<TenantSandbox, true>({
      max: maxIsolates,
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

  /** Disposes least recently used isolates until the live heaps fit the bound; returns how many. */
  enforceHeapBound(): number {
    let total = 0;
    const used = new Map<TenantSandbox, number>();
    for (const sb of this.#lru.keys()) {
      const h = sb.heap();
      if (h === null) continue;
      used.set(sb, h.used + h.external);
      total += h.used + h.external;
    }
    let evicted = 0;
    // rkeys(): least recently used first
    for (const sb of [...this.#lru.rkeys()]) {
      if (total <= this.maxTotalHeapBytes) break;
      const bytes = used.get(sb);
      if (bytes === undefined) continue;
      this.#lru.delete(sb);
      sb.release('pool heap bound');
      total -= bytes;
      evicted++;
    }
    return evicted;
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
    if (this.#heapTimer !== null) clearInterval(this.#heapTimer);
    this.#lru.clear();
  }
}
