// In-isolate runtime: the chains a request switches to when a plugin authenticates a
// consumer (pdk.client.authenticate, client-consumer.ts). Tables made at config compile
// time (core/config/chains.ts); the dispatcher (dispatcher.ts) switches at its loop top.
import { $create, $keys, ACCESS, REWRITE, bare, instance, list, phase } from './prelude.ts';

let families: any[] = list(); // { base, consumers: consumer id -> phase bit -> { at, chains } } (sandbox/program.ts ChainFamily)
let chainFamily: Record<number, number | undefined> = $create(null); // chain id -> index into families
export let ranks: number[] = list(); // instance index -> position in run order
export let runChain = -1;        // chain this call runs now (the one asked for, or the variant it switched to)
export const NO_CHAIN = list<number>();

/**
 * The chain to switch to after the running instance authenticated `consumerId` (null: no
 * consumer), or -1 to stay. Tables made at config compile time (core/config/chains.ts
 * ConsumerSwitch): which chain depends on the phase and on how many plugins the consumer
 * configures differently have already run, so that none runs with two configs.
 */
export function consumerChain(consumerId: string | null): number {
  const f = chainFamily[runChain];
  if (f === undefined) return -1;
  const fam = families[f];
  const byPhase = consumerId === null ? undefined : fam.consumers[consumerId];
  let target: number = fam.base;
  const sw = byPhase === undefined ? undefined : byPhase[phase];
  if (sw !== undefined) {
    const at = sw.at, rank = ranks[instance];
    let j = 0;
    while (j < at.length && at[j] <= rank) j++;
    target = sw.chains[j];
  }
  return target === runChain ? -1 : target;
}

/** Position in `chain` of the first instance that runs after rank `after`: what a switched chain resumes with. */
export function resumeAt(chain: number[], after: number): number {
  let k = 0;
  while (k < chain.length && ranks[chain[k]] <= after) k++;
  return k;
}

/** Installs the program's consumer tables (api.setup); their objects lose their prototype so a plugin-chosen id finds only own keys. */
export function setupConsumerChains(program: any): void {
  families = program.families === undefined ? list() : program.families;
  for (let i = 0; i < families.length; i++) {
    const byConsumer = bare(bare(families[i]).consumers);
    const ids = $keys(byConsumer);
    for (let k = 0; k < ids.length; k++) {
      const byPhase = bare(byConsumer[ids[k]]);
      bare(byPhase[REWRITE]);
      bare(byPhase[ACCESS]);
    }
  }
  chainFamily = program.chainFamily === undefined ? $create(null) : bare(program.chainFamily);
  ranks = program.ranks === undefined ? list() : program.ranks;
}

/** The chain this call runs from now on (the one asked for, the consumer's variant, or a suspended chain's). */
export function setRunChain(id: number): void { runChain = id; }
