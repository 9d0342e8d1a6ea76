// In-isolate runtime: Kong 3's configure(configs) handler (the host's api.configure). Run
// when a tenant's isolate is built, after api.setup, once per plugin, with the frozen
// configs of all its instances: the very objects its handlers later get as `config`, so a
// WeakMap keyed by them holds what configure made of each. Its pdk has only what needs no
// request: pdk.log's lines and pdk.node. Like api.load, everything that runs plugin code
// runs inside a catch and what leaves is text the runtime made.
import type { ConfigurePdk } from '../types.ts';
import { RUNTIME_PHASES } from '../phases.ts';
import { $Error, $create, $freeze, beginCall, capped, cappedWhy, clearCapped, instances, list, opsText, setInstance, type Instance } from './prelude.ts';
import { describe } from './describe.ts';
import { encodeValue } from './encode.ts';
import { pdkLog } from './log.ts';
import { pdkNode } from './node-router.ts';

const CONFIGURE = RUNTIME_PHASES.configure;
const PHASE_BITS = RUNTIME_PHASES.order;

/** What a plugin's configure pdk forwards to (pdk-bridge/realm.js makes the plugin's copy). */
export const configurePdk = $freeze({
  log: $freeze({ debug: pdkLog.debug, info: pdkLog.info, warn: pdkLog.warn, error: pdkLog.error }),
  node: pdkNode,
} satisfies ConfigurePdk);

/**
 * Runs the configure export of plugin `meta` (a module api.load registered; `index` its
 * plugin index) with the configs of its instances, in config order, as a frozen array of
 * its realm. Returns JSON made here: [failure, ops], failure '' when it returned normally,
 * else what went wrong (then its instances are disabled here too: see disable), ops its
 * log lines. The host has armed the plugin's CPU deadline and keeps it armed until this
 * call's microtasks are done.
 */
export function configure(meta: Record<string, any>, index: number, owner: number): string {
  beginCall(CONFIGURE, '', '', '', '', false);
  setInstance(owner);
  let failure = '';
  try {
    const mine = list<Instance>();
    for (let n = 0; n < instances.length; n++) if (instances[n].plugin === index) mine[mine.length] = instances[n];
    // An array of the plugin's realm made by its JSON.parse (captured before its code ran),
    // so each element is already an own data property: filling it meets no setter the
    // plugin may have planted on its Array.prototype.
    let holes = '[';
    for (let k = 0; k < mine.length; k++) holes += k === 0 ? 'null' : ',null';
    const configs = meta.realm.parse(holes + ']');
    for (let k = 0; k < mine.length; k++) configs[k] = mine[k].config;
    $freeze(configs);
    // Called as a plain function, not as meta's method: `this` must not be a runtime record.
    const fn = meta.configure;
    const r = fn(meta.configurePdk, configs);
    if (r !== null && (typeof r === 'object' || typeof r === 'function') && typeof r.then === 'function') {
      failure = 'configure returned a promise: it must be synchronous (no async PDK call is available there)';
    }
  } catch (e) {
    failure = describe(e);
  }
  if (failure === '' && capped !== -1) failure = cappedWhy; // a log line over a cap, even if it caught the error
  clearCapped();
  setInstance(-1);
  if (failure !== '') disable(index, failure);
  return '[' + encodeValue(failure) + ',[' + opsText + ']]';
}

/**
 * The instances of plugin `index` after its configure failed: every handler throws, so a
 * chain that reaches one anyway (a consumer's chain the host did not check) fails with
 * the reason. The host refuses them before the call in the common case.
 */
function disable(index: number, failure: string): void {
  const handlers: Record<number, Function> = $create(null);
  const fail = function () { throw new $Error('plugin disabled: its configure failed: ' + failure); };
  for (let i = 0; i < PHASE_BITS.length; i++) handlers[PHASE_BITS[i]] = fail;
  $freeze(handlers);
  for (let n = 0; n < instances.length; n++) if (instances[n].plugin === index) instances[n].handlers = handlers;
}
