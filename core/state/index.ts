import type { CounterStore } from './counter-store.ts';
import { IpcCounterStore } from './ipc-counters.ts';
import { LocalCounterStore } from './local-counters.ts';

export type CounterStoreConfig = {
  /** 'worker': a worker under the supervisor, which holds the node's store; 'local': this process holds it. */
  readonly mode: 'worker' | 'local';
};

/**
 * The store pdk.counters uses. A cluster store (core/cluster/redis-counters.ts) is picked
 * here when the config names one (wired at merge).
 */
export function createCounterStore(config: CounterStoreConfig): CounterStore {
  return config.mode === 'worker' ? new IpcCounterStore() : new LocalCounterStore();
}
