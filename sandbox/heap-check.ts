import type ivm from 'isolated-vm';

/**
 * A call that used at least this much CPU is followed by a look at its isolate's heap. A
 * single giant allocation (a flattened rope, a huge string or array) cannot be made in
 * less: it takes tens of milliseconds to fill. Cheaper calls skip the look (it costs a
 * few microseconds).
 */
export const HEAP_CHECK_AFTER_MS = 5;

/**
 * Whether the isolate holds more than its limit after a call: V8's heap in use plus the
 * memory outside it that isolated-vm counts against the limit (ArrayBuffers). isolated-vm
 * lets a call run past `memoryLimit` (its near-heap-limit callback grants up to 1 GB more,
 * and it terminates the isolate only at the next full collection), so a call can finish,
 * and even succeed, holding hundreds of MB; every such isolate kept alive would hold them
 * until its next collection.
 */
export function heapOverLimit(isolate: ivm.Isolate, memoryMb: number): boolean {
  const h = isolate.getHeapStatisticsSync();
  return h.used_heap_size + h.externally_allocated_size > memoryMb * 1024 * 1024;
}
