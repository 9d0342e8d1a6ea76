import { ASYNC_CAPS, OUTPUT_CAPS } from '../../../sandbox/limits.ts';
import { ASYNC_PHASES } from '../phases.ts';
import { argNumber, argString, type Service } from './types.ts';


/** pdk.counters: the node's store (core/state), keys namespaced by tenant (pdk-bridge/runtime/counters.ts). */
export const countersService: Service = {
  name: 'counters',
  methods: {
    increment: {
      phases: ASYNC_PHASES,
      async run(args, cc) {
        const key = argString(args[0], 'counter key', OUTPUT_CAPS.maxStateKeyChars);
        const by = argNumber(args[1], 'counter increment', 0, 1e9);
        const seconds = argNumber(args[2], 'counter window', 0.001, ASYNC_CAPS.maxCounterWindowSeconds);
        const windowMs = Math.max(1, Math.round(seconds * 1000));
        // NUL cannot be in a tenant name: one tenant's keys never meet another's.
        const [count] = await cc.services.counters.increment([{ key: cc.services.tenant + '\0' + key, by: Math.floor(by), windowMs }], Date.now());
        return String(count);
      },
    },
  },
};
