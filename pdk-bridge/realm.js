// A plugin's own realm. Each plugin module of a tenant gets a context of its own inside the
// tenant's isolate (sandbox/blank.ts prepareModule), so that one plugin patching a builtin
// (Array.prototype.push, JSON.stringify, Object.prototype) changes nothing another plugin
// sees. This script runs in that context before any plugin code: it removes the builtins
// we do not offer (as runtime/lockdown.ts does for the runtime's context), captures the
// intrinsics the runtime needs from this realm, and returns the kit the runtime's api.load
// receives with the module.
//
// The kit makes the plugin's `pdk` here, in the plugin's realm: frozen objects whose
// functions forward to the runtime's implementation (closed over, unreachable). So nothing
// a plugin gets leads to the runtime's realm or to another plugin's: PDK functions, config,
// and the errors PDK calls throw are all of this realm, and the objects PDK getters return
// are of this realm (parsed with its JSON.parse) or have no prototype.
(function () {
  'use strict';
  for (const name of ['WebAssembly', 'SharedArrayBuffer', 'Atomics', 'FinalizationRegistry']) delete globalThis[name];
  const apply = Reflect.apply;
  const freeze = Object.freeze;
  const create = Object.create;
  const keys = Object.keys;
  const describeProperty = Object.getOwnPropertyDescriptor;
  const define = Object.defineProperty;

  /**
   * A function of this realm that runs `fn` of the runtime through `call` (the runtime's
   * gate: it notes which realm is calling, and turns its own errors into this realm's).
   */
  function forward(call, fn, self) {
    return (...args) => call(fn, self, args); // an arrow: no prototype, no this
  }

  /** This realm's copy of one PDK namespace: methods forwarded, accessors (ctx.shared) too. */
  function namespace(call, impl) {
    const out = {};
    const names = keys(impl);
    for (let i = 0; i < names.length; i++) {
      const d = describeProperty(impl, names[i]);
      if (d.get !== undefined) define(out, names[i], { get: forward(call, d.get, impl), enumerable: true });
      else if (typeof d.value === 'function') out[names[i]] = forward(call, d.value, impl);
    }
    return freeze(out);
  }

  const kit = create(null);
  kit.parse = JSON.parse;
  kit.Error = Error;
  kit.TypeError = TypeError;
  kit.RangeError = RangeError;
  const P = Promise; // captured before plugin code can replace the global
  /**
   * A promise of this realm for one async PDK call: its settle functions go into `rec` (a
   * runtime record), which settles it when the host answers (runtime/async.ts).
   */
  kit.deferred = function (rec) {
    return new P((resolve, reject) => { rec.resolve = resolve; rec.reject = reject; });
  };
  /** The plugin's pdk, from the runtime's namespaces (an object of name -> namespace) and its gate. */
  kit.pdk = function (impl, call) {
    const pdk = {};
    const names = keys(impl);
    for (let i = 0; i < names.length; i++) pdk[names[i]] = namespace(call, impl[names[i]]);
    return freeze(pdk);
  };
  /** A function of this realm for a callback of the runtime (what a handler's then() receives). */
  kit.callback = function (call, fn) {
    return forward(call, fn, undefined);
  };
  return freeze(kit);
})()
