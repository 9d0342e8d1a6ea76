import type { RedisCounterStore } from '../cluster/redis-counters.ts';
import type { RedisSettings } from '../cluster/redis.ts';
import type { CounterStore } from './counter-store.ts';
import { IpcCounterStore } from './ipc-counters.ts';
import { LocalCounterStore } from './local-counters.ts';

export type CounterStoreConfig = {
  /** 'worker': a worker under the supervisor, which holds the node's store; 'local': this process holds it. */
  readonly mode: 'worker' | 'local';
  /** `cluster.redis` of a cluster node: its counters are then the cluster's, in Redis. */
  readonly redis?: RedisSettings;
};

/** The stores pdk.counters reaches: the node's, and the cluster's (null on a single node). */
export type CounterStores = { readonly node: CounterStore; readonly cluster: CounterStore | null };

/** `onUnready`: told when Redis did not answer within connectTimeoutMs (the node serves anyway; the first cluster counts fail until it does). */
type Options = { onUnready?: (err: Error) => void };

/**
 * The stores pdk.counters uses. The node's is in the supervisor (workers ask it over IPC)
 * or in this process. A cluster node also gets the cluster's, a RedisCounterStore of its
 * own per process (one connection per worker, none through the supervisor: Redis applies
 * each script run atomically, so counts stay exact across workers and nodes, and a worker
 * saves the IPC hop). Plugins pick one per call (`{ cluster: true }`, Kong's policy redis).
 */
export async function createCounterStores(config: CounterStoreConfig, options: Options = {}): Promise<CounterStores> {
  const node = config.mode === 'worker' ? new IpcCounterStore() : new LocalCounterStore();
  if (config.redis === undefined) return { node, cluster: null };
  // Loaded only by cluster nodes: a single node never loads ioredis.
  const { RedisCounterStore: Store } = await import('../cluster/redis-counters.ts');
  const cluster: RedisCounterStore = new Store(config.redis);
  // Connected before the node serves, so its first requests count like the others.
  await cluster.ready(config.redis.connectTimeoutMs).catch((err: Error) => options.onUnready?.(err));
  return { node, cluster };
}
