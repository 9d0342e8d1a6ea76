import type { PhaseCaller } from '../../sandbox/phase-caller.ts';
import { switchIndex } from '../../core/config/chains.ts';
import type { RuntimeRoute } from '../../core/route.ts';

/**
 * Where a request goes when a plugin authenticates a consumer, on the host side (the
 * runtime's twin is pdk-bridge/runtime/consumer-chains.ts): the chain for the phase and
 * the authenticating instance's rank, from the route's tables. null: the route's own chain.
 */
export function switchTarget(route: RuntimeRoute, consumerId: string, instance: number, phase: number): { readonly chainId: number; readonly phases: number } | null {
  const sw = route.consumerChains?.get(consumerId)?.[phase];
  if (sw === undefined) return null;
  return sw.chains[switchIndex(sw.at, route.sandbox!.program.ranks[instance] ?? -1)];
}

/**
 * While some breaker is open or an instance quarantined (never on the normal path): the
 * blocked instances of the chains this phase could switch to, beyond the current one. The
 * runtime is told to skip them all, so none runs; a fail-closed one is `deferred`: if the
 * call did switch into a chain that reaches it, the request fails as if it had been
 * refused up front (see reachedDeferred).
 */
export function blockedInSwitches(route: RuntimeRoute, gate: Pick<PhaseCaller, 'verdict'>, chainId: number, phase: number): { skip: number[]; deferred: number[] } {
  const skip: number[] = [];
  const deferred: number[] = [];
  const chains = route.sandbox!.program.chains;
  const current = new Set(chains[chainId][phase] ?? []);
  for (const byPhase of route.consumerChains?.values() ?? []) {
    for (const sw of Object.values(byPhase)) {
      for (const c of sw.chains) {
        for (const idx of chains[c.chainId][phase] ?? []) {
          if (current.has(idx) || skip.includes(idx) || gate.verdict(idx) === 'run') continue;
          skip.push(idx);
          if (route.instances[idx]?.failOpen !== true) deferred.push(idx);
        }
      }
    }
  }
  return { skip, deferred };
}

/** The deferred instance the call's authentication led to (after the authenticating plugin), or -1. */
export function reachedDeferred(route: RuntimeRoute, ops: readonly unknown[], phase: number, deferred: readonly number[]): number {
  let owner = -1;
  let auth: { id: string; by: number } | null = null;
  for (const op of ops) {
    if (!Array.isArray(op)) continue;
    if (op[0] === '@' && typeof op[1] === 'number') owner = op[1];
    else if (op[0] === 'auth' && typeof op[1] === 'string') auth = { id: op[1], by: owner };
  }
  if (auth === null) return -1;
  const to = switchTarget(route, auth.id, auth.by, phase);
  if (to === null) return -1;
  const ranks = route.sandbox!.program.ranks;
  const after = ranks[auth.by] ?? -1;
  for (const idx of route.sandbox!.program.chains[to.chainId][phase] ?? []) {
    if (deferred.includes(idx) && ranks[idx] > after) return idx;
  }
  return -1;
}
