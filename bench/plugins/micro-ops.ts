import type { Pdk } from '../../pdk-bridge/types.ts';

/**
 * The micro-benchmark's operation-class plugin (bench/micro/run.ts): its access handler
 * makes `reads` request.getHeader calls, `writes` response.setHeader calls and `waits`
 * awaited cache.get calls, so the cost of one operation of a class is the difference to
 * the crossing with none, divided by the count.
 */
type Config = { reads: number; writes: number; waits: number };

export const name = 'micro-ops';
export const version = '1.0.0';
export const priority = 1000;

export function access(pdk: Pdk, config: Config): void | Promise<void> {
  let v: unknown;
  for (let i = 0; i < config.reads; i++) v = pdk.request.getHeader('x-bench');
  for (let i = 0; i < config.writes; i++) pdk.response.setHeader('x-micro', 'v');
  void v;
  // synchronous unless it waits: a returned promise alone costs a microtask round
  return config.waits > 0 ? wait(pdk, config.waits) : undefined;
}

async function wait(pdk: Pdk, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await pdk.cache.get('k');
}
