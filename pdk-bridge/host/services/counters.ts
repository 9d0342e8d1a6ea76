import type { CounterIncrement, CounterStore } from '../../../core/state/counter-store.ts';
import { ASYNC_CAPS, OUTPUT_CAPS } from '../../../sandbox/limits.ts';
import { ASYNC_PHASES } from '../phases.ts';
import { argNumber, argString, ServiceError, type CallContext, type Service } from './types.ts';

function item(tenant: string, key: unknown, by: unknown, seconds: unknown): CounterIncrement {
  const k = argString(key, 'counter key', OUTPUT_CAPS.maxStateKeyChars);
  const n = argNumber(by, 'counter increment', 0, 1e9);
  const s = argNumber(seconds, 'counter window', 0.001, ASYNC_CAPS.maxCounterWindowSeconds);
  // NUL cannot be in a tenant name: one tenant's keys never meet another's.
  return { key: tenant + '\0' + k, by: Math.floor(n), windowMs: Math.max(1, Math.round(s * 1000)) };
}

/** A single node is a cluster of one: its cluster counters are the node's (a config written for a cluster runs on one node as is). */
function store(cc: CallContext, cluster: unknown): CounterStore {
  return cluster === true ? (cc.services.counters.cluster ?? cc.services.counters.node) : cc.services.counters.node;
}

async function count(s: CounterStore, items: CounterIncrement[]): Promise<number[]> {
  try {
    return await s.increment(items, Date.now());
  } catch (err) {
    // The store's own message (Redis down, the supervisor gone) is the plugin's to log; it names no secret.
    throw new ServiceError(`counters: the store did not answer: ${(err as Error).message}`);
  }
}

/** pdk.counters: the node's store or the cluster's (core/state), keys namespaced by tenant (pdk-bridge/runtime/counters.ts). */
export const countersService: Service = {
  name: 'counters',
  methods: {
    increment: {
      phases: ASYNC_PHASES,
      async run(args, cc) {
        const [n] = await count(store(cc, args[3]), [item(cc.services.tenant, args[0], args[1], args[2])]);
        return String(n);
      },
    },
    /** Several counters in one crossing and one store call: [[key, by, windowSeconds], ...], cluster. */
    incrementMany: {
      phases: ASYNC_PHASES,
      async run(args, cc) {
        const list = args[0];
        if (!Array.isArray(list) || list.length === 0 || list.length > ASYNC_CAPS.maxCounterBatch) throw new ServiceError(`counters.incrementMany takes 1 to ${ASYNC_CAPS.maxCounterBatch} items`);
        const items = list.map((it: unknown) => {
          if (!Array.isArray(it) || it.length !== 3) throw new ServiceError('counters.incrementMany: an item must be [key, by, windowSeconds]');
          return item(cc.services.tenant, it[0], it[1], it[2]);
        });
        return JSON.stringify(await count(store(cc, args[1]), items));
      },
    },
  },
};
