import { setFlagsFromString } from 'node:v8';
import ivm from 'isolated-vm';
import { REALM_CACHE, REALM_NAME, REALM_SOURCE, RUNTIME_CACHE, RUNTIME_NAME, RUNTIME_SOURCE, bundleCache, compileCached, compileOptions, keepCache, warmCodeCaches } from './code-cache.ts';

// Plugin code runs in a context of its own, called from the runtime's context: V8 then
// refuses `Function(...)` in the plugin ("no access"), a check meant for browser frames of
// different origins. Each plugin only ever holds its own realm's Function, so the check
// guards nothing here, and bundled libraries use Function('return this') widely. V8 reads
// the flag at each call.
setFlagsFromString('--allow-unsafe-function-constructor');

/** The realm script of each isolate, compiled once per isolate (its functions' bytecode is then shared by every plugin context). */
const realmScripts = new WeakMap<ivm.Isolate, ivm.Script>();

/** A plugin module ready to load: nothing of the plugin has run yet. Release both references after api.load. */
export type PreparedModule = {
  /** Calling it runs the module and returns its exports (from the plugin's own context). */
  readonly factory: ivm.Reference<() => unknown>;
  /** What pdk-bridge/realm.js returned in that context. */
  readonly kit: ivm.Reference<unknown>;
};

/**
 * Makes a context of its own for one plugin module in `isolate` (so that what the plugin
 * does to its builtins stays in its realm), runs pdk-bridge/realm.js there, and compiles
 * the bundle into a function without running it: the runtime calls it inside its own catch
 * (api.load), under the caller's deadline. Runs no plugin code.
 */
export function prepareModule(isolate: ivm.Isolate, code: string, filename: string, made: Realm | null = null): PreparedModule {
  let context: ivm.Context;
  let kit: ivm.Reference<unknown>;
  if (made !== null) ({ context, kit } = made);
  else {
    let realm = realmScripts.get(isolate);
    if (realm === undefined) {
      realm = compileCached(isolate, REALM_SOURCE, REALM_NAME, REALM_CACHE);
      realmScripts.set(isolate, realm);
    }
    context = isolate.createContextSync();
    kit = realm.runSync(context, { reference: true }) as ivm.Reference<unknown>;
  }
  const factory = compileCached(isolate, `(function () {\nreturn ${code}\n})`, filename, bundleCache(code))
    .runSync(context, { reference: true }) as ivm.Reference<() => unknown>;
  return { factory, kit };
}

/** A plugin's context with pdk-bridge/realm.js run in it (its kit), no plugin code yet. */
export type Realm = { readonly context: ivm.Context; readonly kit: ivm.Reference<unknown> };

/**
 * An isolate with a context and the PDK runtime evaluated, but no plugin and no tenant
 * yet: the slow part of a cold start (new isolate, new context, runtime), done ahead of
 * time. Only our code has run in it.
 */
export type Blank = {
  readonly isolate: ivm.Isolate;
  readonly context: ivm.Context;
  /**
   * The context of the tenant's first plugin module, made ahead with the blank (pool
   * blanks only; null once taken): 0.3 ms of a cold start. Given to one plugin only,
   * never shared (each plugin has its own realm).
   */
  realm: Realm | null;
  /** The runtime's api object (attach, load, setup, run, runBatch). */
  readonly api: ivm.Reference<Record<string, unknown>>;
  readonly memoryMb: number;
  /** Where this isolate's catastrophic errors go; set by the tenant that adopts it. */
  onCatastrophicError: (message: string) => void;
};

/**
 * When the pool makes its next blank isolate. Its first step, `new ivm.Isolate`, runs on
 * the gateway's thread (1-2 ms; isolated-vm has no async constructor): made 2 ms after
 * a take, it landed inside the very request that took the blank (1.7 ms of that request's
 * CPU, measured). So a refill waits while requests are in flight (`busy`), checked every
 * REFILL_DELAY_MS, but no longer than REFILL_MAX_WAIT_MS, and not at all once a heap size
 * has no blank left: under steady load some request pays for it anyway, and an empty pool
 * makes the next cold start build its blank on the request path. Measured (a lone cold
 * start every 80 ms / back to back): added CPU 4.4 / 2.1 ms without waiting, 1.7 / 2.6
 * with 10 ms, 1.7 / 2.5 with 50 ms (wall 2.7 / 3.1 and 2.9 / 4.0).
 */
const REFILL_DELAY_MS = 2;
const REFILL_MAX_WAIT_MS = 10;

export function createBlank(memoryMb: number): Blank {
  warmCodeCaches();
  const holder = { onCatastrophicError: (_message: string) => {} };
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb, onCatastrophicError: (m) => holder.onCatastrophicError(m) });
  try {
    const context = isolate.createContextSync();
    // From the code cache made after the cold path ran (code-cache.ts): that path's
    // functions come compiled, so the blank no longer runs api.exercise itself (that cost
    // 0.3 ms of CPU and 25 KB of heap per blank, for 0.04 ms less in the first request).
    const api = compileCached(isolate, RUNTIME_SOURCE, RUNTIME_NAME, RUNTIME_CACHE)
      .runSync(context, { reference: true }) as ivm.Reference<Record<string, unknown>>;
    return Object.assign(holder, { isolate, context, api, memoryMb, realm: null }) as Blank;
  } catch (err) {
    isolate.dispose();
    throw err;
  }
}

/**
 * As createBlank, but the context and the runtime are made on isolated-vm's
 * own threads: the gateway's thread only constructs the isolate. Also makes the first
 * plugin's context (Blank.realm).
 */
export async function createBlankAsync(memoryMb: number): Promise<Blank> {
  warmCodeCaches(); // once per process, on this thread
  const holder = { onCatastrophicError: (_message: string) => {} };
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb, onCatastrophicError: (m) => holder.onCatastrophicError(m) });
  try {
    const context = await isolate.createContext();
    const script = await isolate.compileScript(RUNTIME_SOURCE, compileOptions(RUNTIME_NAME, RUNTIME_CACHE));
    keepCache(script, RUNTIME_CACHE);
    const api = (await script.run(context, { reference: true })) as ivm.Reference<Record<string, unknown>>;
    const realmContext = await isolate.createContext();
    const realmScript = await isolate.compileScript(REALM_SOURCE, compileOptions(REALM_NAME, REALM_CACHE));
    keepCache(realmScript, REALM_CACHE);
    realmScripts.set(isolate, realmScript);
    const kit = (await realmScript.run(realmContext, { reference: true })) as ivm.Reference<unknown>;
    return Object.assign(holder, { isolate, context, api, memoryMb, realm: { context: realmContext, kit } }) as Blank;
  } catch (err) {
    if (!isolate.isDisposed) isolate.dispose();
    throw err;
  }
}

/**
 * A few blank isolates kept ready per heap size, so that a tenant's cold start only loads
 * its plugins. Refilled one at a time, off the gateway's thread (createBlankAsync); a
 * burst of cold starts that empties the pool makes its own, as without the pool.
 */
export class WarmIsolates {
  readonly perSize: number;
  #ready = new Map<number, Blank[]>();
  #refilling = false;
  #closed = false;
  readonly #busy: () => boolean;
  /** When the refill under way was first due (its wait is bounded from there). */
  #due = 0;

  /** `busy`: whether requests are in flight (a refill waits for a pause, within bounds). */
  constructor(perSize = 2, busy: () => boolean = () => false) {
    this.perSize = perSize;
    this.#busy = busy;
  }

  /** A blank isolate of `memoryMb`, made now if none is ready. */
  take(memoryMb: number): Blank {
    const list = this.#ready.get(memoryMb);
    const blank = list?.pop();
    if (list === undefined) this.#ready.set(memoryMb, []);
    this.#scheduleRefill();
    return blank ?? createBlank(memoryMb);
  }

  /**
   * Resolves once a blank isolate of `memoryMb` is ready to take, made on isolated-vm's
   * threads if none is (pre-warming: the next take gets it without building one on the
   * gateway's thread). Makes none after close.
   */
  async ready(memoryMb: number): Promise<void> {
    let list = this.#ready.get(memoryMb);
    if (list === undefined) this.#ready.set(memoryMb, (list = []));
    if (list.length > 0 || this.#closed) return;
    try {
      const blank = await createBlankAsync(memoryMb);
      if (this.#closed) blank.isolate.dispose();
      else list.push(blank);
    } catch {
      // out of memory, say: the take makes its own
    }
  }

  /** Fills the pool for each heap size in `sizes` now (at config load), not after the first cold start of each. */
  prime(sizes: Iterable<number>): void {
    for (const size of sizes) if (!this.#ready.has(size)) this.#ready.set(size, []);
    this.#scheduleRefill();
  }

  #scheduleRefill(): void {
    if (this.#refilling || this.#closed || this.perSize === 0) return;
    this.#refilling = true;
    this.#due = performance.now();
    setTimeout(this.#refillOne, REFILL_DELAY_MS).unref();
  }

  #refillOne = (): void => {
    if (this.#busy() && !this.#anyEmpty() && performance.now() - this.#due < REFILL_MAX_WAIT_MS && !this.#closed) {
      setTimeout(this.#refillOne, REFILL_DELAY_MS).unref();
      return;
    }
    for (const [size, list] of this.#ready) {
      if (list.length < this.perSize && !this.#closed) {
        createBlankAsync(size).then(
          (blank) => {
            if (this.#closed) blank.isolate.dispose();
            else list.push(blank);
            this.#refilling = false;
            this.#scheduleRefill();
          },
          () => {
            this.#refilling = false; // out of memory, say: the next take makes its own
          },
        );
        return;
      }
    }
    this.#refilling = false;
  };

  /** Whether some heap size has no blank ready: its next cold start would build one on the request path. */
  #anyEmpty(): boolean {
    for (const list of this.#ready.values()) if (list.length === 0) return true;
    return false;
  }

  close(): void {
    this.#closed = true;
    for (const list of this.#ready.values()) for (const b of list) b.isolate.dispose();
    this.#ready.clear();
  }
}
