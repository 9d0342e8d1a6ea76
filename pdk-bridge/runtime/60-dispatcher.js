// In-isolate runtime: the dispatcher. One host call runs a whole chain for one phase
// (DESIGN.md: crossings, not plugin code, are what costs), collecting the operations of
// every plugin; the host applies them after the call returns.
const HANDLER_BY_PHASE = { 1: 'rewrite', 2: 'access', 4: 'headerFilter', 8: 'bodyFilter', 32: 'log' };
const MAX_FAULT_CHARS = 1024;

const modules = [];     // plugin index -> the plugin's exports
let instances = [];     // instance index -> { handlers, config, cpuMs, failOpen }
let chains = [];        // chain id -> { [phase bit]: instance indexes in priority order }
let callSeq = 0;

function deepFreeze(v) {
  if (v !== null && typeof v === 'object') {
    for (const k of $keys(v)) deepFreeze(v[k]);
    $freeze(v);
  }
  return v;
}

/** Text of a thrown value, read here in the isolate so no plugin getter ever runs on the host. */
function describe(e) {
  let text;
  try {
    if (e !== null && typeof e === 'object') {
      const name = e.name, message = e.message;
      text = (typeof name === 'string' ? name : 'Error') + ': ' + (typeof message === 'string' ? message : $String(message));
    } else {
      text = 'thrown value: ' + $String(e);
    }
  } catch {
    text = 'thrown value could not be read';
  }
  if (typeof text !== 'string') text = 'thrown value could not be read';
  return text.length > MAX_FAULT_CHARS ? $apply($slice, text, [0, MAX_FAULT_CHARS]) : text;
}

function thenOf(r) {
  if (r === null || (typeof r !== 'object' && typeof r !== 'function')) return undefined;
  const then = r.then;
  return typeof then === 'function' ? then : undefined;
}

/**
 * Runs `chain` from position k. Synchronous handlers run in a plain loop; a handler that
 * returns a promise continues the loop from its settlement (still inside the same host
 * call: the isolate drains its microtasks before the result is copied out).
 */
function step(seq, ph, chain, k, skip, faults, done) {
  for (; k < chain.length; k++) {
    const idx = chain[k];
    if (skip !== null && skip.includes(idx)) continue;
    const inst = instances[idx];
    const handler = inst.handlers[ph];
    instance = idx;
    $current[0] = idx;
    $deadline[0] = $now() + inst.cpuMs;
    let then, r;
    try {
      r = handler(pdk, inst.config);
      then = thenOf(r);
    } catch (e) {
      if (e === EXIT) break;
      $apply($push, faults, [[idx, 'threw', describe(e)]]);
      if (!inst.failOpen) break;
      continue;
    }
    if (then !== undefined) {
      const next = k + 1;
      const resume = function () {
        if (seq !== callSeq) return; // a promise that settled in a later call: drop it
        step(seq, ph, chain, next, skip, faults, done);
      };
      const fail = function (e) {
        if (seq !== callSeq) return;
        if (e === EXIT) return done(faults);
        $apply($push, faults, [[idx, 'threw', describe(e)]]);
        if (!inst.failOpen) return done(faults);
        step(seq, ph, chain, next, skip, faults, done);
      };
      try { $apply(then, r, [resume, fail]); } catch (e) { fail(e); }
      return;
    }
  }
  done(faults);
}

function begin(ph, reqJson, phaseJson, ctxJson) {
  phase = ph;
  ops = [];
  reqRaw = reqJson;
  req = null;
  phaseRaw = phaseJson;
  phaseData = null;
  ctxShared = ctxJson === '' ? null : $parse(ctxJson);
  exited = false;
  logLines = 0;
  return ++callSeq;
}

/** Encodes the call's result: [ops, faults] as JSON, and pdk.ctx.shared as JSON ('' when unused). */
function encode(faults, out) {
  $deadline[0] = 0;
  let ctx = '';
  if (ctxShared !== null && $keys(ctxShared).length > 0) {
    try {
      ctx = $stringify(ctxShared);
    } catch (e) {
      // ctx.shared holding a cycle or a BigInt: report it instead of losing the request
      $apply($push, faults, [[instance, 'bad_return', 'pdk.ctx.shared is not JSON: ' + describe(e)]]);
    }
  }
  out.c = ctx;
  try {
    out.s = $stringify([ops, faults]);
  } catch (e) {
    out.s = $stringify([[], [[instance, 'bad_return', 'operations are not JSON: ' + describe(e)]]]);
  }
}

return {
  /** Registers the exports object of plugin `index` (the host evaluated its bundle). */
  load(index, exports) {
    const mod = exports !== null && typeof exports === 'object' && exports.default !== undefined ? exports.default : exports;
    modules[index] = mod;
  },

  /** Installs the tenant's instances and chains (JSON), replacing any previous ones. */
  setup(programJson) {
    const program = $parse(programJson);
    instances = program.instances.map((i) => {
      const mod = modules[i.plugin];
      const handlers = {};
      for (const bit of [REWRITE, ACCESS, HEADER_FILTER, BODY_FILTER, LOG]) {
        const fn = mod[HANDLER_BY_PHASE[bit]];
        if (typeof fn === 'function') handlers[bit] = fn;
      }
      return { handlers, config: deepFreeze(i.config), cpuMs: i.cpuMs, failOpen: i.failOpen };
    });
    chains = program.chains;
  },

  /** One phase of one chain. Returns { s } where s is the JSON result, or undefined while pending. */
  run(chainId, ph, reqJson, phaseJson, ctxJson, skip) {
    const out = { s: undefined, c: '' };
    const seq = begin(ph, reqJson, phaseJson, ctxJson);
    step(seq, ph, chains[chainId][ph], 0, skip === undefined ? null : skip, [], (faults) => encode(faults, out));
    return out;
  },

  /** Several log-phase runs in one call: items are [chainId, reqJson, phaseJson, ctxJson]. */
  runBatch(items) {
    const out = { s: undefined };
    const results = [];
    const next = (k) => {
      if (k === items.length) { out.s = '[' + results.join(',') + ']'; return; }
      const it = items[k];
      const seq = begin(LOG, it[1], it[2], it[3]);
      step(seq, LOG, chains[it[0]][LOG], 0, null, [], (faults) => {
        const r = { s: '', c: '' };
        encode(faults, r);
        $apply($push, results, [r.s]);
        next(k + 1);
      });
    };
    next(0);
    return out;
  },
};
