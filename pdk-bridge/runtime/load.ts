// In-isolate runtime: loading plugin modules and installing a tenant's instances (the
// host's api.load, info, setup, configure; api.phases for the phase-table test;
// api.exercise, run in the throwaway isolate whose code caches every blank starts from:
// sandbox/code-cache.ts). Everything here that can run plugin code runs inside a catch,
// and what leaves is a capped string the runtime made.
import { $create, $current, $deadline, $freeze, $isArray, $keys, $parse, $stringify, ACCESS, ANY_PHASE, BODY_FILTER, HEADER_FILTER, LOG, OWN_REALM, PHASE_BITS, PHASE_NAMES, REWRITE, RESPONSE, bare, gateFor, instances, list, realmOf, setInstances } from './prelude.ts';
import { RUNTIME_PHASES } from '../phases.ts';
import { dropRequests } from './async.ts';
import { setupConsumerChains } from './consumer-chains.ts';
import { clip, describe } from './describe.ts';
import { encodeValue } from './encode.ts';
import { setPending } from './frames.ts';
import { pdk } from './pdk.ts';
import { BEFORE_UPSTREAM } from './service-request.ts';
import { HAS_RESPONSE, HEADERS_WRITABLE } from './response.ts';
import { api, setChains } from './dispatcher.ts';
import { configure, configurePdk } from './configure.ts';

/** Phase bit -> the handler export it calls: the phase's name (pdk-bridge/phases.ts). */
const HANDLER_BY_PHASE = PHASE_NAMES;
const CONFIGURE = RUNTIME_PHASES.configure;

const modules: Record<string, any>[] = list(); // plugin index -> { handlers (phase bit -> function), info (metadata JSON) }
const NO_HANDLERS = $freeze($create(null));
const same = (fn: Function) => fn;
/** Freezes parsed config; its objects lose their prototype so a planted getter cannot answer for a missing key. */
function deepFreeze(v: any): any {
  if (v !== null && typeof v === 'object') {
    bare(v);
    const keys = $keys(v);
    for (let i = 0; i < keys.length; i++) deepFreeze(v[keys[i]]);
    $freeze(v);
  }
  return v;
}

/**
 * Runs the module of plugin `index` and registers what it exports. `factory` is a
 * function made from the plugin's bundle by the host in the plugin's own context, and `kit`
 * what pdk-bridge/realm.js made there (nothing of the plugin ran before this call); the
 * plugin's pdk is made from it first, then calling `factory` runs the module's top-level
 * code. Everything that can run plugin
 * code (the top level, getters on the exports) runs here, inside a catch: no value the
 * plugin made ever leaves the isolate as an exception, because isolated-vm would convert
 * it on the host's thread, outside any limit. Returns a number when the module loaded: 1
 * when it exports a configure, 0 when not (the host then skips the configure crossing);
 * else what went wrong as a capped string.
 */
api.load = function (index: any, factory: any, kit: any) {
  try {
    const rec = realmOf(kit);
    const gate = gateFor(rec);
    const meta: Record<string, any> = $create(null);
    meta.realm = rec;
    meta.pdk = kit.pdk(pdk, gate);
    meta.callback = function (fn: Function) { return kit.callback(gate, fn); };
    const exports = factory();
    const mod = exports !== null && typeof exports === 'object' && exports.default !== undefined ? exports.default : exports;
    const handlers: Record<number, Function> = $create(null);
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
    const conf = mod !== null && typeof mod === 'object' ? mod.configure : undefined;
    meta.configure = typeof conf === 'function' ? conf : null;
    meta.configurePdk = meta.configure === null ? null : kit.pdk(configurePdk, gate);
    meta.readsBody = mod !== null && typeof mod === 'object' && readsOf(mod) === 'body';
    meta.info = mod !== null && typeof mod === 'object' ? moduleInfo(mod, names) : '';
    modules[index] = meta;
    return meta.configure === null ? 0 : 1;
  } catch (e) {
    return describe(e);
  }
};

/** The module's metadata as JSON, built by hand: only strings and numbers read from it, each capped. */
function moduleInfo(mod: any, handlers: any) {
  const name = mod.name, version = mod.version, priority = mod.priority;
  return '{"name":' + (typeof name === 'string' ? $stringify(clip(name)) : 'null') +
    ',"version":' + (typeof version === 'string' ? $stringify(clip(version)) : 'null') +
    ',"priority":' + (typeof priority === 'number' && priority === priority && priority !== Infinity && priority !== -Infinity ? '' + priority : 'null') +
    ',"handlers":"' + handlers + '","reads":"' + readsOf(mod) + '","readsResponse":' + readsResponseOf(mod) + ',"http":' + declaredHosts(mod) + '}';
}

/** The module's `readsResponse` export as JSON: true (also when absent), false, or "invalid" for anything else (the host refuses the plugin). */
function readsResponseOf(mod: any) {
  const r = mod.readsResponse;
  return r === undefined || r === true ? 'true' : r === false ? 'false' : '"invalid"';
}

/**
 * The module's `reads` export: 'body' for ['body'], '' when absent, 'invalid' for anything
 * else (the host refuses the plugin). Read by index, each element checked to be a string.
 */
function readsOf(mod: any) {
  const r = mod.reads;
  if (r === undefined) return '';
  if (!$isArray(r)) return 'invalid';
  const n = r.length;
  if (n === 0) return '';
  if (n !== 1 || r[0] !== 'body') return 'invalid';
  return 'body';
}

/** capabilities.http, the outbound hosts the plugin declares, as JSON ('null' when absent): strings only, capped. */
function declaredHosts(mod: any) {
  const caps = mod.capabilities;
  const hosts = caps !== null && typeof caps === 'object' ? caps.http : undefined;
  if (!$isArray(hosts)) return 'null';
  const out = list<string>();
  for (let i = 0; i < hosts.length && i < 64; i++) {
    const h = hosts[i];
    if (typeof h === 'string' && h.length <= 256) out[out.length] = h;
  }
  return encodeValue(out);
}

/** What plugin `index` exports (see moduleInfo), '' when its module exports no object. For the host's inspection at config load. */
api.info = function (index: any) {
  const meta = modules[index];
  return meta === undefined ? '' : meta.info;
};

/** The runtime's view of the phase table, as JSON: what test/pdk-bridge/phase-table.test.ts compares with the host's. */
api.phases = function () {
  return $stringify({
    bits: { REWRITE, ACCESS, HEADER_FILTER, BODY_FILTER, RESPONSE, LOG },
    configure: CONFIGURE,
    names: PHASE_NAMES,
    handlers: HANDLER_BY_PHASE,
    order: PHASE_BITS,
    masks: { ANY_PHASE, BEFORE_UPSTREAM, HEADERS_WRITABLE, HAS_RESPONSE },
  });
};

/** Installs the tenant's instances and chains (JSON), replacing any previous ones. Runs no plugin code. */
api.setup = function (programJson: any) {
  const program = $parse(programJson);
  const specs = program.instances;
  const next = list();
  for (let n = 0; n < specs.length; n++) {
    const spec = specs[n];
    const mod = modules[spec.plugin];
    const inst: Record<string, any> = $create(null);
    // A plugin whose module failed to load has no handlers: the host never calls its instances.
    inst.handlers = mod === undefined ? NO_HANDLERS : mod.handlers;
    inst.plugin = spec.plugin;
    inst.pdk = mod === undefined ? pdk : mod.pdk;
    inst.callback = mod === undefined ? same : mod.callback;
    inst.readsBody = mod !== undefined && mod.readsBody;
    inst.realm = mod === undefined ? OWN_REALM : mod.realm;
    // the config is the plugin's own data: made in its realm
    inst.config = deepFreeze(mod === undefined ? spec.config : mod.realm.parse($stringify(spec.config)));
    inst.cpuMs = spec.cpuMs;
    inst.failOpen = spec.failOpen;
    inst.name = spec.name; // named by the errors of an early headerFilter (prelude.ts)
    next[n] = inst;
  }
  setInstances(next);
  setChains(program.chains);
  setupConsumerChains(program);
};

/**
 * Runs the configure export of plugin `index` (configure.ts) with its instances' configs;
 * `owner` is the instance named for it (its first). An empty result (["",[]]) when it has
 * none, or its module did not load.
 */
api.configure = function (index: any, owner: any) {
  const meta = modules[index];
  if (meta === undefined || meta.configure === null) return '["",[]]';
  return configure(meta, index, owner);
};

/**
 * Runs the dispatcher and the common PDK paths once with a built-in handler, then forgets
 * it: called in the throwaway isolate after which the runtime's code cache is made
 * (sandbox/code-cache.ts), so that no isolate compiles these paths at a tenant's first
 * request. Only runtime code runs here.
 */
api.exercise = function () {
  const handler = function (p: any) {
    p.response.setHeader('x-warm', p.request.getHeader('x-warm') || p.request.getPath());
    p.serviceRequest.setHeader('x-warm', '1');
    p.ctx.set('warm', p.request.getQueryArg('a'));
    p.log.debug('warm');
  };
  const inst: Record<string, any> = $create(null);
  inst.handlers = $create(null);
  inst.handlers[ACCESS] = handler;
  inst.handlers[HEADER_FILTER] = function (p: any) { p.response.setHeader('x-status', p.response.getStatus()); };
  inst.config = deepFreeze({});
  inst.pdk = pdk;
  inst.callback = same;
  inst.readsBody = false;
  inst.realm = OWN_REALM;
  inst.cpuMs = 1000;
  inst.failOpen = false;
  setInstances(list());
  instances[0] = inst;
  setChains($parse('[{"2":[0],"4":[0]}]'));
  const req = '{"m":"GET","p":"/","q":"a=1&b=2","h":{"host":"warm","x-warm":"1"},"ip":"127.0.0.1","s":"http"}';
  for (let i = 0; i < 3; i++) {
    api.run(0, ACCESS, req, '', '', '');
    api.run(0, HEADER_FILTER, req, '{"s":200,"h":{"content-type":"text/plain"}}', '{"warm":"1"}', '');
  }
  setInstances(list());
  setChains(null);
  setPending(null);
  dropRequests();
  $deadline[0] = 0;
  $current[0] = -1;
};

