import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ivm from 'isolated-vm';
import { EARLY_HEADER_FILTER, PHASE } from '../pdk-bridge/phases.ts';
import { loadRuntime } from './runtime-cache.ts';

/** The in-isolate runtime (sandbox/runtime-build.ts), loaded once per process, when this module loads (built when its cache is stale). */
export const RUNTIME_SOURCE = loadRuntime();
/** Run first in each plugin's own context: its lockdown, and the kit the runtime makes its pdk with. */
export const REALM_SOURCE = readFileSync(join(import.meta.dirname, '..', 'pdk-bridge', 'realm.js'), 'utf8');
export const RUNTIME_NAME = 'isogate:runtime';
export const REALM_NAME = 'isogate:realm';

/**
 * V8 code caches of the scripts every isolate compiles: the runtime (1.5 ms to compile,
 * 0.2 ms from the cache), the realm script, and plugin bundles. Keyed by the exact source:
 * V8's own check of a cache against its source compares only the length, so a cache must
 * never meet another source. A rejected cache (V8 flags changed) is made again.
 *
 * A cache V8 makes at compile time holds only the functions compiled eagerly (the top
 * level); the others are compiled at their first call, in every isolate again. So the
 * runtime's and the realm script's caches are made by warmCodeCaches after a cold start's
 * whole path ran once in a throwaway isolate: each later isolate then starts with that
 * path's bytecode (1 ms less CPU per blank, measured). Bundles' caches are made by their
 * first compile.
 */
export type CodeCache = { data: ivm.ExternalCopy<ArrayBuffer> | null };
export const RUNTIME_CACHE: CodeCache = { data: null };
export const REALM_CACHE: CodeCache = { data: null };
/** Bundle source -> cache; the oldest goes past MAX_BUNDLE_CACHES (a reload brings new sources). */
const bundleCaches = new Map<string, CodeCache>();
const MAX_BUNDLE_CACHES = 256;

type CachedScript = ivm.Script & { cachedData?: ivm.ExternalCopy<ArrayBuffer>; cachedDataRejected?: boolean };

export function compileOptions(filename: string, cache: CodeCache): ivm.ScriptOrigin & { cachedData?: ivm.ExternalCopy<ArrayBuffer>; produceCachedData?: boolean } {
  return cache.data === null ? { filename, produceCachedData: true } : { filename, cachedData: cache.data };
}

export function keepCache(script: CachedScript, cache: CodeCache): void {
  if (cache.data === null) cache.data = script.cachedData ?? null;
  else if (script.cachedDataRejected === true) cache.data = null;
}

export function compileCached(isolate: ivm.Isolate, source: string, filename: string, cache: CodeCache): ivm.Script {
  const script = isolate.compileScriptSync(source, compileOptions(filename, cache));
  keepCache(script, cache);
  return script;
}

export function bundleCache(code: string): CodeCache {
  let c = bundleCaches.get(code);
  if (c === undefined) {
    c = { data: null };
    bundleCaches.set(code, c);
    if (bundleCaches.size > MAX_BUNDLE_CACHES) bundleCaches.delete(bundleCaches.keys().next().value!);
  }
  return c;
}

/**
 * The module the throwaway isolate loads: ours, written like a header plugin whose
 * headerFilter runs inside the access crossing (readsResponse: false), with a configure.
 */
const WARM_MODULE = `(function () {
return {
  name: 'isogate-warm', version: '1.0.0', priority: 0, readsResponse: false,
  configure: function (pdk, configs) { pdk.log.debug('warm', configs.length); },
  access: function (pdk, config) {
    const v = pdk.request.getHeader('x-warm');
    pdk.response.setHeader('x-warm', typeof v === 'string' ? v : pdk.request.getPath());
    pdk.serviceRequest.setHeader('x-warm', '1');
    pdk.ctx.set('warm', pdk.request.getQueryArg('a'));
  },
  headerFilter: function (pdk, config) { pdk.response.setHeader('x-warm-filter', pdk.request.getHeader('x-warm') || 'none'); },
};
})`;
const WARM_SETUP = JSON.stringify({
  instances: [{ plugin: 0, name: 'isogate-warm', config: { n: 1 }, cpuMs: 1000, failOpen: false }],
  chains: [{ [PHASE.ACCESS]: [0], [PHASE.HEADER_FILTER]: [0] }],
  families: [],
  chainFamily: {},
  ranks: [0],
});
const WARM_REQUEST = '{"m":"GET","p":"/","q":"a=1","h":{"host":"warm","x-warm":"1"},"ip":"127.0.0.1","s":"http"}';

/** Tries of warmCodeCaches (one, and again when V8 rejected its caches): a failing one is not repeated for every blank. */
let warmTries = 0;
const MAX_WARM_TRIES = 3;

function callApi(api: ivm.Reference<Record<string, unknown>>, name: string, args: unknown[]): unknown {
  const fn = api.getSync(name, { reference: true }) as ivm.Reference<(...a: unknown[]) => unknown>;
  try {
    return fn.applySync(undefined, args, { timeout: 1000, arguments: { copy: true } });
  } finally {
    fn.release();
  }
}

/**
 * Makes the runtime's and the realm script's code caches after the path of a cold start
 * ran once (exercise, a module's load in its own realm, setup, configure, an access call
 * that runs headerFilter early, twice): V8 then serializes the bytecode of every function
 * that path compiled. Done once per process, before its first blank, in an isolate of its
 * own that is disposed at once: nothing but our code runs in it, and a cache holds code
 * only (bytecode and its constants), no value of the isolate. When this fails the caches
 * are made by the first compile, as before.
 */
export function warmCodeCaches(): void {
  if ((RUNTIME_CACHE.data !== null && REALM_CACHE.data !== null) || warmTries >= MAX_WARM_TRIES) return;
  warmTries++;
  const isolate = new ivm.Isolate({ memoryLimit: 64 });
  try {
    const context = isolate.createContextSync();
    const api = isolate.compileScriptSync(RUNTIME_SOURCE, { filename: RUNTIME_NAME }).runSync(context, { reference: true }) as ivm.Reference<Record<string, unknown>>;
    callApi(api, 'exercise', []);
    callApi(api, 'attach', [new ivm.ExternalCopy(new SharedArrayBuffer(24)).copyInto({ release: true })]);
    const realm = isolate.compileScriptSync(REALM_SOURCE, { filename: REALM_NAME });
    const own = isolate.createContextSync();
    const kit = realm.runSync(own, { reference: true }) as ivm.Reference<unknown>;
    const factory = isolate.compileScriptSync(WARM_MODULE, { filename: 'isogate:warm' }).runSync(own, { reference: true }) as ivm.Reference<unknown>;
    const load = api.getSync('load', { reference: true }) as ivm.Reference<(...a: unknown[]) => unknown>;
    const failure = load.applySync(undefined, [0, factory.derefInto(), kit.derefInto()], { timeout: 1000 });
    load.release();
    if (typeof failure === 'string' && failure !== '') return;
    callApi(api, 'setup', [WARM_SETUP]);
    callApi(api, 'configure', [0, 0]);
    for (let i = 0; i < 2; i++) callApi(api, 'run', [0, PHASE.ACCESS | EARLY_HEADER_FILTER, WARM_REQUEST, '', '', '']);
    // The same source compiled again in the same isolate is V8's compilation cache's hit:
    // the script whose functions ran, serialized with their bytecode.
    const runtime = isolate.compileScriptSync(RUNTIME_SOURCE, { filename: RUNTIME_NAME, produceCachedData: true }) as CachedScript;
    const realmAgain = isolate.compileScriptSync(REALM_SOURCE, { filename: REALM_NAME, produceCachedData: true }) as CachedScript;
    if (runtime.cachedData !== undefined && realmAgain.cachedData !== undefined) {
      RUNTIME_CACHE.data = runtime.cachedData;
      REALM_CACHE.data = realmAgain.cachedData;
    }
  } catch {
    // left to the first compile's caches
  } finally {
    isolate.dispose();
  }
}
