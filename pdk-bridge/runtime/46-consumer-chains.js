// In-isolate runtime: the chains a request switches to when a plugin authenticates a
// consumer (pdk.client.authenticate, 44-client-consumer.js). Tables made at config compile
// time (core/config/chains.ts); the dispatcher (60-dispatcher.js) switches at its loop top.
let families = list();    // { base, consumers: consumer id -> phase bit -> { at, chains } } (sandbox/program.ts ChainFamily)
let chainFamily = $create(null); // chain id -> index into families
let ranks = list();       // instance index -> position in run order
let runChain = -1;        // chain this call runs now (the one asked for, or the variant it switched to)
const NO_CHAIN = list();

/**
 * The chain to switch to after the running instance authenticated `consumerId` (null: no
 * consumer), or -1 to stay. Tables made at config compile time (core/config/chains.ts
 * ConsumerSwitch): which chain depends on the phase and on how many plugins the consumer
 * configures differently have already run, so that none runs with two configs.
 */
function consumerChain(consumerId) {
  const f = chainFamily[runChain];
  if (f === undefined) return -1;
  const fam = families[f];
  const byPhase = consumerId === null ? undefined : fam.consumers[consumerId];
  let target = fam.base;
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
function resumeAt(chain, after) {
  let k = 0;
  while (k < chain.length && ranks[chain[k]] <= after) k++;
  return k;
}

/** Installs the program's consumer tables (api.setup); their objects lose their prototype so a plugin-chosen id finds only own keys. */
function setupConsumerChains(program) {
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
