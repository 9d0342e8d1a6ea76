// In-isolate runtime: the dispatcher. One host call runs a whole chain for one phase
// (DESIGN.md: crossings, not plugin code, are what costs), collecting the operations of
// every plugin; the host applies them after the call returns.
//
// Plugin code has run in this context by the time the dispatcher works, and may have
// patched any prototype. So the dispatcher keeps its tables in prototype-less objects,
// loops by index instead of iterators, calls only intrinsics captured in the prelude, and
// encodes its result with its own encoder (JSON.stringify would honour a planted toJSON).
/** Phase bit -> the handler export it calls: the phase's name (pdk-bridge/phases.ts). */
const HANDLER_BY_PHASE = PHASE_NAMES;

const modules = list();   // plugin index -> { handlers (phase bit -> function), info (metadata JSON) }
const NO_HANDLERS = $freeze($create(null));
const same = (fn) => fn;
let chains = null;        // chain id -> { [phase bit]: instance indexes in priority order }
/** Freezes parsed config; its objects lose their prototype so a planted getter cannot answer for a missing key. */
function deepFreeze(v) {
  if (v !== null && typeof v === 'object') {
    bare(v);
    const keys = $keys(v);
    for (let i = 0; i < keys.length; i++) deepFreeze(v[keys[i]]);
    $freeze(v);
  }
  return v;
}

function thenOf(r) {
  if (r === null || (typeof r !== 'object' && typeof r !== 'function')) return undefined;
  const then = r.then;
  return typeof then === 'function' ? then : undefined;
}

/**
 * The fault of handler `idx` that just ended, or null: too_large when it hit an output cap
 * (even if it caught the error), else threw when it threw `e` (`e` undefined: it did not).
 */
function faultOf(idx, threw, e) {
  if (timedOut === idx) {
    clearTimedOut();
    const f = list();
    f[0] = idx; f[1] = 'timeout'; f[2] = 'waited on async PDK calls past its wall time (wallMs)';
    return f;
  }
  if (capped === idx) {
    clearCapped();
    const f = list();
    f[0] = idx; f[1] = 'too_large'; f[2] = cappedWhy;
    return f;
  }
  if (!threw) return null;
  const f = list();
  f[0] = idx; f[1] = 'threw'; f[2] = describe(e);
  return f;
}

function skipped(skip, idx) {
  if (skip === null) return false;
  for (let i = 0; i < skip.length; i++) if (skip[i] === idx) return true;
  return false;
}

/**
 * Runs `chain` from position k. Synchronous handlers run in a plain loop; a handler that
 * returns a promise continues the loop from its settlement (still inside the same host
 * call: the isolate drains its microtasks before the result is copied out).
 */
function step(seq, ph, chain, k, skip, faults, done) {
  for (;; k++) {
    if (authChain !== -1) {
      // a plugin authenticated a consumer with scoped plugins: the rest of this phase runs its chain
      setRunChain(takeAuthChain());
      const next = chains[runChain][ph];
      chain = next === undefined ? NO_CHAIN : next;
      k = resumeAt(chain, ranks[instance]);
    }
    if (k >= chain.length) break;
    const idx = chain[k];
    if (skipped(skip, idx)) continue;
    const inst = instances[idx];
    const handler = inst.handlers[ph];
    setInstance(idx);
    $current[0] = idx;
    $deadline[0] = inst.cpuMs;
    $current[1]++;
    let then, r;
    try {
      r = handler(inst.pdk, inst.config);
      then = thenOf(r);
    } catch (e) {
      const f = faultOf(idx, e !== EXIT, e);
      if (f === null) break; // exit()
      faults[faults.length] = f;
      if (!inst.failOpen) break;
      continue;
    }
    if (then === undefined) {
      const f = faultOf(idx, false, undefined);
      if (f !== null) {
        faults[faults.length] = f;
        if (!inst.failOpen) break;
        continue;
      }
    }
    if (then !== undefined) {
      const next = k + 1;
      let settled = false; // a plugin's then() may call us more than once: only the first counts
      const resume = function () {
        if (settled || seq !== callSeq) return; // or a promise that settled in another request's call
        settled = true;
        const f = faultOf(idx, false, undefined);
        if (f !== null) {
          faults[faults.length] = f;
          if (!inst.failOpen) return done(faults);
        }
        step(seq, ph, chain, next, skip, faults, done);
      };
      const fail = function (e) {
        if (settled || seq !== callSeq) return;
        settled = true;
        const f = faultOf(idx, e !== EXIT, e);
        if (f === null) return done(faults); // exit()
        faults[faults.length] = f;
        if (!inst.failOpen) return done(faults);
        step(seq, ph, chain, next, skip, faults, done);
      };
      // the callbacks a plugin's then() gets are functions of its own realm
      try { $apply(then, r, [inst.callback(resume), inst.callback(fail)]); } catch (e) { fail(e); }
      return;
    }
  }
  done(faults);
}

function begin(ph, chainId, reqJson, phaseJson, ctxJson, body, last) {
  setRunChain(chainId);
  beginAuth();
  beginAsync();
  return beginCall(ph, reqJson, phaseJson, ctxBegin(ctxJson), body, last);
}

let pending = null; // the out of a call whose chain awaited: collect() hands it over
let batch = null;   // the log batch this call runs (runBatch), or null

const api = $create(null);

/** Attaches the watchdog cells (a SharedArrayBuffer: Float64 CPU limit, Int32 at byte 8 the running instance, at byte 12 the step). */
api.attach = function (shared) {
  attachCells(shared);
};

/**
 * Runs the module of plugin `index` and registers what it exports. `factory` is a
 * function made from the plugin's bundle by the host in the plugin's own context, and `kit`
 * what pdk-bridge/realm.js made there (nothing of the plugin ran before this call); the
 * plugin's pdk is made from it first, then calling `factory` runs the module's top-level
 * code. Everything that can run plugin
 * code (the top level, getters on the exports) runs here, inside a catch: no value the
 * plugin made ever leaves the isolate as an exception, because isolated-vm would convert
 * it on the host's thread, outside any limit. Returns '' when the module loaded, else
 * what went wrong as a capped string.
 */
api.load = function (index, factory, kit) {
  try {
    const rec = realmOf(kit);
    const gate = gateFor(rec);
    const meta = $create(null);
    meta.realm = rec;
    meta.pdk = kit.pdk(pdk, gate);
    meta.callback = function (fn) { return kit.callback(gate, fn); };
    const exports = factory();
    const mod = exports !== null && typeof exports === 'object' && exports.default !== undefined ? exports.default : exports;
    const handlers = $create(null);
    let names = '';
    if (mod !== null && typeof mod === 'object') {
      for (let i = 0; i < PHASE_BITS.length; i++) {
        const bit = PHASE_BITS[i];
        const fn = mod[HANDLER_BY_PHASE[bit]];
        if (typeof fn === 'function') {
          handlers[bit] = fn;
          names += (names === '' ? '' : ',') + HANDLER_BY_PHASE[bit];
        }
      }
    }
    meta.handlers = $freeze(handlers);
    meta.readsBody = mod !== null && typeof mod === 'object' && readsOf(mod) === 'body';
    meta.info = mod !== null && typeof mod === 'object' ? moduleInfo(mod, names) : '';
    modules[index] = meta;
    return '';
  } catch (e) {
    return describe(e);
  }
};

/** The module's metadata as JSON, built by hand: only strings and numbers read from it, each capped. */
function moduleInfo(mod, handlers) {
  const name = mod.name, version = mod.version, priority = mod.priority;
  return '{"name":' + (typeof name === 'string' ? $stringify(clip(name)) : 'null') +
    ',"version":' + (typeof version === 'string' ? $stringify(clip(version)) : 'null') +
    ',"priority":' + (typeof priority === 'number' && priority === priority && priority !== Infinity && priority !== -Infinity ? '' + priority : 'null') +
    ',"handlers":"' + handlers + '","reads":"' + readsOf(mod) + '","http":' + declaredHosts(mod) + '}';
}

/**
 * The module's `reads` export: 'body' for ['body'], '' when absent, 'invalid' for anything
 * else (the host refuses the plugin). Read by index, each element checked to be a string.
 */
function readsOf(mod) {
  const r = mod.reads;
  if (r === undefined) return '';
  if (!$isArray(r)) return 'invalid';
  const n = r.length;
  if (n === 0) return '';
  if (n !== 1 || r[0] !== 'body') return 'invalid';
  return 'body';
}

/** capabilities.http, the outbound hosts the plugin declares, as JSON ('null' when absent): strings only, capped. */
function declaredHosts(mod) {
  const caps = mod.capabilities;
  const hosts = caps !== null && typeof caps === 'object' ? caps.http : undefined;
  if (!$isArray(hosts)) return 'null';
  const out = list();
  for (let i = 0; i < hosts.length && i < 64; i++) {
    const h = hosts[i];
    if (typeof h === 'string' && h.length <= 256) out[out.length] = h;
  }
  return encodeValue(out);
}

/** What plugin `index` exports (see moduleInfo), '' when its module exports no object. For the host's inspection at config load. */
api.info = function (index) {
  const meta = modules[index];
  return meta === undefined ? '' : meta.info;
};

/** The runtime's view of the phase table, as JSON: what test/pdk-bridge/phase-table.test.ts compares with the host's. */
api.phases = function () {
  return $stringify({
    bits: { REWRITE, ACCESS, HEADER_FILTER, BODY_FILTER, RESPONSE, LOG },
    names: PHASE_NAMES,
    handlers: HANDLER_BY_PHASE,
    order: PHASE_BITS,
    masks: { ANY_PHASE, BEFORE_UPSTREAM, HEADERS_WRITABLE, HAS_RESPONSE },
  });
};

/** Installs the tenant's instances and chains (JSON), replacing any previous ones. Runs no plugin code. */
api.setup = function (programJson) {
  const program = $parse(programJson);
  const specs = program.instances;
  const next = list();
  for (let n = 0; n < specs.length; n++) {
    const spec = specs[n];
    const mod = modules[spec.plugin];
    const inst = $create(null);
    // A plugin whose module failed to load has no handlers: the host never calls its instances.
    inst.handlers = mod === undefined ? NO_HANDLERS : mod.handlers;
    inst.pdk = mod === undefined ? pdk : mod.pdk;
    inst.callback = mod === undefined ? same : mod.callback;
    inst.readsBody = mod !== undefined && mod.readsBody;
    inst.realm = mod === undefined ? OWN_REALM : mod.realm;
    // the config is the plugin's own data: made in its realm
    inst.config = deepFreeze(mod === undefined ? spec.config : mod.realm.parse($stringify(spec.config)));
    inst.cpuMs = spec.cpuMs;
    inst.failOpen = spec.failOpen;
    next[n] = inst;
  }
  setInstances(next);
  chains = program.chains;
  setupConsumerChains(program);
};

/**
 * One phase of one chain. Returns the encoded result (see encode) when the chain finished
 * synchronously, the common case: a plain string crosses cheapest. When a handler awaited,
 * the chain finishes in the microtasks the isolate runs after this call; it returns
 * undefined and the host asks collect() for the result. `skip` is '' or instance indexes
 * joined by ','. `body` is the phase's body (see bodyIn), `last` true for bodyFilter's last chunk.
 */
api.run = function (chainId, ph, reqJson, phaseJson, ctxJson, skip, body, last) {
  const out = $create(null);
  out.s = undefined;
  const seq = begin(ph, chainId, reqJson, phaseJson, ctxJson, body, last);
  dropRequests();
  batch = null;
  setOut(out, finishRun);
  pending = out;
  step(seq, ph, chains[chainId][ph], 0, skip === '' ? null : parseSkip(skip), list(), chainDone);
  const s = out.s;
  return asyncOut === null || s === undefined ? s : finished(s);
};

/**
 * The result of the last call that returned undefined, once the isolate ran its
 * microtasks: the chain's result, or its suspension (see suspend).
 */
api.collect = function () {
  const out = pending;
  pending = null;
  if (out === null) return undefined;
  if (out.s !== undefined) return finished(out.s);
  return suspend();
};

/**
 * Resumes suspended chain `id` with the host's answers (see settle); returns as run does
 * (undefined: ask collect). '' when no such chain is suspended (it was resumed already).
 */
api.resume = function (id, answersJson) {
  const f = frames[id];
  if (f === undefined) return '';
  delete frames[id]; // not left as a key: ids only grow
  restore(f);
  dropRequests();
  batch = null;
  pending = callOut;
  settle($parse(answersJson));
  // The continuations run in the microtasks after this call, under the CPU limit of the
  // instance that waited (a plugin's cpuMs holds for each crossing of its phase).
  const idx = instance;
  $current[0] = idx;
  $deadline[0] = idx >= 0 && idx < instances.length ? instances[idx].cpuMs : 0;
  $current[1]++;
  return undefined;
};

function parseSkip(text) {
  const parts = $apply($split, text, [',']);
  const out = list();
  for (let i = 0; i < parts.length; i++) out[i] = +parts[i];
  return out;
}

/** Several log-phase runs in one call: items are [chainId, reqJson, phaseJson, ctxJson]. Returns as run does. */
api.runBatch = function (items) {
  const out = $create(null);
  out.s = undefined;
  pending = out;
  dropRequests();
  const b = $create(null);
  b.items = items;
  b.k = 0;
  b.results = '';
  b.out = out;
  batch = b;
  nextItem(b);
  return asyncOut === null || out.s === undefined ? out.s : finished(out.s);
};

function nextItem(b) {
  const k = b.k;
  if (k === b.items.length) { b.out.s = '[' + b.results + ']'; return; }
  const it = b.items[k];
  const seq = begin(LOG, it[0], it[1], it[2], it[3]);
  setOut($create(null), batchItemDone);
  step(seq, LOG, chains[it[0]][LOG], 0, null, list(), chainDone);
}

function batchItemDone(faults) {
  const b = batch;
  const r = callOut;
  encode(faults, r);
  const s = r.s;
  b.results += (b.k === 0 ? '' : ',') + $apply($slice, s, [0, $apply($indexOf, s, ['\n'])]);
  b.k++;
  nextItem(b);
}

/**
 * Runs the dispatcher and the common PDK paths once with a built-in handler, then forgets
 * it: called when a blank isolate is made ahead of time, so that a tenant's first request
 * does not pay for compiling the runtime. Only runtime code runs here.
 */
api.exercise = function () {
  const handler = function (p) {
    p.response.setHeader('x-warm', p.request.getHeader('x-warm') || p.request.getPath());
    p.serviceRequest.setHeader('x-warm', '1');
    p.ctx.set('warm', p.request.getQueryArg('a'));
    p.log.debug('warm');
  };
  const inst = $create(null);
  inst.handlers = $create(null);
  inst.handlers[ACCESS] = handler;
  inst.handlers[HEADER_FILTER] = function (p) { p.response.setHeader('x-status', p.response.getStatus()); };
  inst.config = deepFreeze({});
  inst.pdk = pdk;
  inst.callback = same;
  inst.readsBody = false;
  inst.realm = OWN_REALM;
  inst.cpuMs = 1000;
  inst.failOpen = false;
  setInstances(list());
  instances[0] = inst;
  chains = $parse('[{"2":[0],"4":[0]}]');
  const req = '{"m":"GET","p":"/","q":"a=1&b=2","h":{"host":"warm","x-warm":"1"},"ip":"127.0.0.1","s":"http"}';
  for (let i = 0; i < 3; i++) {
    api.run(0, ACCESS, req, '', '', '');
    api.run(0, HEADER_FILTER, req, '{"s":200,"h":{"content-type":"text/plain"}}', '{"warm":"1"}', '');
  }
  setInstances(list());
  chains = null;
  pending = null;
  dropRequests();
  $deadline[0] = 0;
  $current[0] = -1;
};

export { api };
